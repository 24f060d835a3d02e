//! Talking to WeChat: the authorize redirect, the code exchange and what its error codes mean.

pub mod answer;
pub mod authorize;
pub mod client;
pub mod credentials;
pub mod errcode;
pub mod scope;

pub use client::{ExchangeError, Identity, WechatClient};
pub use scope::Scope;
