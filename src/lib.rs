//! openid-gateway: a pingora reverse proxy that logs WeChat users in silently
//! (`snsapi_base`) and forwards each request with a signed `X-Openid-Token`.
//!
//! A request's path: [`proxy`] runs pingora's phases; [`proxy::decide`] reads the request
//! once into a canonical target and decides it; [`login`] sends browsers without a
//! [`session`] to WeChat and handles the callback, exchanging each code once
//! ([`login::exchange`], [`wechat`]); [`token`] signs what the upstream receives.
//! [`dev`] holds the embedded demo app and the mock WeChat.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod config;
pub mod dev;
pub mod handoff;
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
