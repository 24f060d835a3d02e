//! Talking to WeChat and WeCom: the authorize redirect, the code exchange (WeCom's user
//! lookup), the account's credentials and what their error codes mean.

pub mod answer;
pub mod authorize;
pub mod client;
pub mod credentials;
pub mod errcode;
pub mod identity;
pub mod scope;
pub mod wecom;

pub use client::{ExchangeError, WechatClient};
pub use identity::{Identity, Subject};
pub use scope::Scope;
