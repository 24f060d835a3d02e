//! The baseline of `bench/run`: a pingora pass-through with nothing but `upstream_peer`, built
//! with the gateway's own pingora version and features, on one worker thread like the gateway
//! under test.
//!
//! `bare_pingora <listen> <upstream>`, for example `bare_pingora 127.0.0.1:9000 127.0.0.1:9001`.
//! `bare_pingora_mimalloc` is the same with the gateway's allocator.

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct PassThrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for PassThrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

pub fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: bare_pingora <listen> <upstream>");
        std::process::exit(2);
    };
    let Ok(upstream) = upstream.parse::<SocketAddr>() else {
        eprintln!("bare_pingora: the upstream must be an address such as 127.0.0.1:9001");
        std::process::exit(2);
    };
    let conf = ServerConf { threads: 1, ..ServerConf::default() };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(&server.configuration, PassThrough { upstream });
    proxy.add_tcp(&listen);
    server.add_service(proxy);
    server.run_forever();
}
