//! The freshness rule of a held credential.

use super::*;

fn held(got_s: u64, life_s: u64) -> Held {
    Held { value: "v".into(), expires_ms: (got_s + life_s) * 1000, got_ms: got_s * 1000, bound: String::new() }
}

#[test]
fn a_token_is_kept_until_three_minutes_before_its_end() {
    let h = held(0, 7200);
    assert!(h.fresh(7_200_000 - 180_001));
    assert!(!h.fresh(7_200_000 - 180_000));
    assert!(h.usable(7_200_000 - 5_001));
    assert!(!h.usable(7_200_000 - 5_000));
    assert_eq!(h.expires_in(7_000_000), 200);
}

#[test]
fn a_short_lived_credential_is_refreshed_in_its_last_quarter() {
    let h = held(0, 40);
    assert!(h.fresh(29_999));
    assert!(!h.fresh(30_000));
    assert!(h.usable(37_999));
    assert!(!h.usable(38_000));
}

#[test]
fn a_held_credential_never_prints() {
    let h = Held { value: "the-token-itself".into(), ..held(0, 10) };
    assert!(!format!("{h:?}").contains("the-token-itself"));
}
