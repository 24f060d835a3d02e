//! openid-gateway: a pingora reverse proxy that logs WeChat users in silently
//! (`snsapi_base`) and forwards each request with a signed `X-Openid-Token`.
//!
//! A request's path: [`proxy`] dispatches each pingora phase; [`login`] sends browsers
//! without a [`session`] to WeChat and handles the callback, exchanging each code once
//! ([`exchange`], [`wechat`]); [`token`] signs what the upstream receives.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod access;
pub mod client;
pub mod clock;
pub mod config;
pub mod cookies;
pub mod demo;
pub mod duration;
pub mod endpoints;
pub mod error;
pub mod exchange;
pub mod gateway;
pub mod keys;
pub mod login;
pub mod mock_wechat;
pub mod pages;
pub mod proxy;
pub mod reply;
pub mod returns;
pub mod run;
pub mod seal;
pub mod secret;
pub mod server;
pub mod session;
pub mod token;
pub mod verify;
pub mod wechat;
