//! A WeCom app's codes turned into users: the corp's access_token, shared by the app's
//! account ([`crate::account`]), then WeCom's user lookup. A token WeCom refuses (`40014`,
//! `42001`, `40001`) is refreshed once, if it is still the current one, and the lookup asked
//! once more: WeCom refuses the token before it looks at the code.

use std::sync::Arc;

use async_trait::async_trait;

use super::exchange::CodeExchanger;
use crate::account::health::token_went_bad;
use crate::account::{Account, CredentialError};
use crate::wechat::wecom::WecomUsers;
use crate::wechat::{ExchangeError, Identity};

/// A WeCom app's code exchange.
pub struct WecomExchanger {
    users: WecomUsers,
    account: Arc<Account>,
}

impl WecomExchanger {
    pub fn new(users: WecomUsers, account: Arc<Account>) -> Self {
        Self { users, account }
    }
}

#[async_trait]
impl CodeExchanger for WecomExchanger {
    async fn exchange(&self, code: &str) -> Result<Identity, ExchangeError> {
        let token = self.account.token().await.map_err(refused)?;
        match self.users.user(&token.value, code).await {
            Err(ExchangeError::Rejected { errcode, errmsg }) if token_went_bad(errcode) => {
                let (fresh, _) = self.account.refresh_stale(&token.value).await.map_err(refused)?;
                if fresh.value == token.value {
                    return Err(ExchangeError::Rejected { errcode, errmsg });
                }
                self.users.user(&fresh.value, code).await
            }
            other => other,
        }
    }
}

/// The corp token could not be had: said as the exchange's failure, with WeCom's error code
/// when there is one, so the page and the log explain it as they explain an exchange.
fn refused(e: CredentialError) -> ExchangeError {
    match e {
        CredentialError::Wechat { source, .. } => source,
        CredentialError::Pausing { errcode: Some(errcode), last, .. } => {
            ExchangeError::Rejected { errcode, errmsg: last }
        }
        CredentialError::Pausing { last, .. } => ExchangeError::Network(last),
        CredentialError::Busy(_) => ExchangeError::Timeout,
        CredentialError::NoSecret(_) => ExchangeError::Malformed("this gateway holds no corpsecret".into()),
    }
}
