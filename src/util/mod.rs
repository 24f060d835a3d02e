//! Small pieces every wing uses: injected time and randomness ([`clock`]), durations,
//! secrets that never print ([`secret`]), and a sharded map.

pub mod clock;
pub mod duration;
pub mod secret;
pub mod sharded;
