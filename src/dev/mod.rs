//! For development and the embedded demo: a strict mock of WeChat and a demo app that
//! verifies the token it receives. Never on a production request path.

pub mod demo;
pub mod mock_wechat;
