//! openid-gateway: a pingora reverse proxy that logs WeChat users in silently
//! (`snsapi_base`) and forwards each request with a signed `X-Openid-Token`.
//!
//! A request's path: [`proxy`] runs pingora's phases; [`proxy::decide`] reads the request
//! once into a canonical target and decides it; [`login`] sends browsers without a
//! [`session`] to WeChat and handles the callback, exchanging each code once
//! ([`login::exchange`], [`wechat`]); [`token`] signs what the upstream receives.
//! [`dev`] holds the embedded demo app and the mock WeChat.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod admin;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod dev;
pub mod duration;
pub mod error;
pub mod gateway;
pub mod handoff;
pub mod keys;
pub mod live;
pub mod logging;
pub mod login;
pub mod metrics;
pub mod pages;
pub mod proxy;
pub mod reply;
pub mod run;
pub mod seal;
pub mod secret;
pub mod serve;
pub mod server;
pub mod session;
pub mod sharded;
pub mod state;
pub mod tls;
pub mod token;
pub mod verify;
pub mod wechat;
