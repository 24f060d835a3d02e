//! openid-gateway: a pingora reverse proxy that logs WeChat users in silently
//! (`snsapi_base`) and forwards each request with a signed `X-Openid-Token`.
//!
//! A request's path: [`serve`] runs the services; [`proxy`] runs pingora's phases and reads
//! the request once through [`http`] (who asks, the canonical target); [`proxy::decide`]
//! finds its route and its [`session`] in the [`runtime`] record of its app; [`login`] sends
//! browsers without one to WeChat (or through a login host, [`login::handoff`]), handles the
//! callback and exchanges each code once ([`wechat`]); [`token`] signs what the upstream
//! receives. What replicas share lives in [`shared`]; what an operator sees in [`observe`];
//! the pages a person sees in [`pages`]; [`config`] is read once into typed values.
//! [`dev`] holds the embedded demo app and the mock WeChat.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod account;
pub mod config;
pub mod dev;
pub mod http;
pub mod login;
pub mod observe;
pub mod pages;
pub mod proxy;
pub mod runtime;
pub mod serve;
pub mod session;
pub mod shared;
pub mod token;
pub mod util;
pub mod wechat;
