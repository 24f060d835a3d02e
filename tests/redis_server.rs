//! The real Redis of tests/common/redis_server.rs: a server keeps what it is given, dies when
//! killed and comes back on the same port (its own, below the ephemeral range, with its
//! options); a password server refuses strangers; a three-node cluster agrees and sends every
//! key to the node owning its slot; nothing outlives its test.

mod common;

use common::redis_server::{Conn, RedisCluster, RedisServer, Reply};

fn status(s: &str) -> Reply {
    Reply::Status(s.into())
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

#[test]
fn a_server_keeps_values_dies_when_killed_and_restarts_on_its_port() {
    let mut server = RedisServer::start();
    assert_eq!(server.url(), format!("redis://127.0.0.1:{}", server.port));
    let mut conn = server.connect();
    assert_eq!(conn.command(&["SET", "greeting", "hello"]).unwrap(), status("OK"));
    assert_eq!(conn.command(&["GET", "greeting"]).unwrap(), bulk("hello"));
    assert_eq!(conn.command(&["GET", "nothing"]).unwrap(), Reply::Bulk(None));

    server.kill();
    let refused = Conn::open(server.port).err().map(|e| e.kind());
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused));
    assert!(conn.command(&["PING"]).is_err(), "a killed server's connection must be dead");

    let port = server.port;
    server.restart();
    assert_eq!(server.port, port);
    let mut conn = server.connect();
    assert_eq!(conn.command(&["PING"]).unwrap(), status("PONG"));
    assert_eq!(conn.command(&["GET", "greeting"]).unwrap(), Reply::Bulk(None), "nothing is saved");
}

#[test]
fn servers_listen_below_the_ephemeral_range_on_ports_of_their_own_and_keep_their_options() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let ephemeral: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    let mut one = RedisServer::start_with(&["--maxmemory-policy", "allkeys-lru"]);
    let policy = |s: &RedisServer| s.connect().command(&["CONFIG", "GET", "maxmemory-policy"]).unwrap();
    let lru = Reply::Array(Some(vec![bulk("maxmemory-policy"), bulk("allkeys-lru")]));
    assert_eq!(policy(&one), lru);
    // Servers started while one is down are on ports of their own; it comes back on its own.
    one.kill();
    let others: Vec<_> = (0..8).map(|_| RedisServer::start()).collect();
    one.restart();
    assert_eq!(policy(&one), lru, "a restart gives the options again");
    let mut ports: Vec<u16> = others.iter().map(|s| s.port).chain([one.port]).collect();
    assert!(ports.iter().all(|p| *p < ephemeral), "{ports:?} not below {ephemeral}");
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), 9, "two servers on one port");
}

#[test]
fn a_password_server_refuses_commands_before_auth() {
    let server = RedisServer::start_with_password("s3cret-for-tests");
    let mut stranger = Conn::open(server.port).unwrap();
    let refused = stranger.command(&["GET", "k"]).unwrap();
    assert!(matches!(&refused, Reply::Error(e) if e.starts_with("NOAUTH")), "{refused:?}");
    let wrong = stranger.command(&["AUTH", "guess"]).unwrap();
    assert!(matches!(&wrong, Reply::Error(e) if e.starts_with("WRONGPASS")), "{wrong:?}");

    assert_eq!(stranger.command(&["AUTH", "s3cret-for-tests"]).unwrap(), status("OK"));
    assert_eq!(stranger.command(&["SET", "k", "v"]).unwrap(), status("OK"));
    assert_eq!(server.connect().command(&["GET", "k"]).unwrap(), bulk("v"));
}

#[test]
#[should_panic(expected = "was taken while the server was down")]
fn a_restart_notices_its_port_was_taken() {
    let mut server = RedisServer::start();
    server.kill();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", server.port)).unwrap();
    server.restart();
}

#[test]
fn a_dropped_server_leaves_no_process_nor_folder() {
    let server = RedisServer::start();
    let (pid, dir) = (server.pid(), server.dir().to_path_buf());
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(server);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "redis-server {pid} outlived its test");
    assert!(!dir.exists(), "{dir:?} outlived its test");
}

/// The node, by port, owning `slot` according to `CLUSTER SLOTS`.
fn owner(conn: &mut Conn, slot: i64) -> i64 {
    let Reply::Array(Some(ranges)) = conn.command(&["CLUSTER", "SLOTS"]).unwrap() else { panic!("CLUSTER SLOTS") };
    ranges
        .iter()
        .find_map(|range| match range {
            Reply::Array(Some(r)) => match (&r[0], &r[1], &r[2]) {
                (Reply::Int(low), Reply::Int(high), Reply::Array(Some(node))) if (*low..=*high).contains(&slot) => {
                    match node[1] {
                        Reply::Int(port) => Some(port),
                        _ => None,
                    }
                }
                _ => None,
            },
            _ => None,
        })
        .unwrap_or_else(|| panic!("no node owns slot {slot}"))
}

#[test]
fn a_cluster_agrees_and_redirects_each_key_to_its_slot_owner() {
    let cluster = RedisCluster::start();
    assert_eq!(cluster.urls().len(), 3);
    let mut entry = cluster.nodes[0].connect();
    let mut answered_by = std::collections::BTreeSet::new();
    for i in 0..12 {
        let (key, value) = (format!("key-{i}"), format!("value-{i}"));
        let Reply::Int(slot) = entry.command(&["CLUSTER", "KEYSLOT", &key]).unwrap() else { panic!("KEYSLOT") };
        let port = owner(&mut entry, slot);
        let node = cluster.nodes.iter().find(|n| i64::from(n.port) == port).expect("the owner is one of ours");
        match entry.command(&["SET", &key, &value]).unwrap() {
            Reply::Status(ok) if ok == "OK" => assert_eq!(node.port, cluster.nodes[0].port, "{key} set on a non-owner"),
            Reply::Error(moved) => assert_eq!(moved, format!("MOVED {slot} 127.0.0.1:{port}"), "{key}"),
            other => panic!("SET {key}: {other:?}"),
        }
        let mut at_owner = node.connect();
        assert_eq!(at_owner.command(&["SET", &key, &value]).unwrap(), status("OK"));
        assert_eq!(at_owner.command(&["GET", &key]).unwrap(), bulk(&value));
        answered_by.insert(node.port);
    }
    assert_eq!(answered_by.len(), 3, "the keys should spread over the three nodes");
}

#[test]
fn a_restarted_cluster_node_rejoins_with_its_slots() {
    let mut cluster = RedisCluster::start();
    cluster.nodes[2].kill();
    cluster.nodes[2].restart();
    cluster.wait_until_ok();
    let mut node = cluster.nodes[2].connect();
    let Reply::Int(slot) = node.command(&["CLUSTER", "KEYSLOT", "k"]).unwrap() else { panic!("KEYSLOT") };
    let port = owner(&mut node, slot);
    let mut at_owner = cluster.nodes.iter().find(|n| i64::from(n.port) == port).unwrap().connect();
    assert_eq!(at_owner.command(&["SET", "k", "v"]).unwrap(), status("OK"));
    assert_eq!(owner(&mut cluster.nodes[0].connect(), 16383), i64::from(cluster.nodes[2].port));
}
