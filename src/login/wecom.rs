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
        let looked_up = match self.users.user(&token.value, code).await {
            Err(ExchangeError::Rejected { errcode, errmsg }) if token_went_bad(errcode) => {
                let (fresh, _) = self.account.refresh_stale(&token.value).await.map_err(refused)?;
                if fresh.value == token.value {
                    return Err(ExchangeError::Rejected { errcode, errmsg });
                }
                self.users.user(&fresh.value, code).await
            }
            other => other,
        };
        self.account.used(looked_up.as_ref().map(|_| ()));
        looked_up
    }
}

/// The corp token could not be had: the exchange's failure, with WeCom's error code when
/// there is one (the account's health has logged what to do about it).
fn refused(e: CredentialError) -> ExchangeError {
    match e {
        CredentialError::Wechat { source: ExchangeError::Rejected { errcode, errmsg }, .. } => {
            ExchangeError::Credential { errcode: Some(errcode), errmsg }
        }
        CredentialError::Pausing { errcode, last, .. } => ExchangeError::Credential { errcode, errmsg: last },
        CredentialError::Wechat { source, .. } => source,
        CredentialError::Busy(_) => ExchangeError::Timeout,
        e @ CredentialError::NoSecret(_) => ExchangeError::Credential { errcode: None, errmsg: e.to_string() },
    }
}
