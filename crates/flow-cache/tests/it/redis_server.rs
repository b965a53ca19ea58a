//! A real `redis-server` started by the test itself on a free loopback port.
//!
//! The binary comes from `FLOW_REDIS_SERVER`, else `redis-server` on `PATH`. When neither
//! exists the test FAILS with instructions: Redis tests are never skipped silently.

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the `redis-server` binary is, from the values of `FLOW_REDIS_SERVER` and `PATH`.
pub fn find_redis_server(
    env: Option<OsString>,
    path: Option<&OsString>,
) -> Result<PathBuf, String> {
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "FLOW_REDIS_SERVER={} is not a file; point it at a redis-server binary \
                 (apt-get install redis-server) or unset it to search PATH",
                p.display()
            ))
        };
    }
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "redis-server not found: the Redis tests need a real server. Install it \
             (apt-get install redis-server), put it on PATH, or set FLOW_REDIS_SERVER to its path; \
             `bash scripts/test` does this for you"
                .to_owned()
        })
}

/// A running `redis-server`, killed on drop.
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free loopback port; panics (failing the test) if it cannot.
    pub fn start() -> Self {
        let binary = find_redis_server(
            std::env::var_os("FLOW_REDIS_SERVER"),
            std::env::var_os("PATH").as_ref(),
        )
        .unwrap_or_else(|msg| panic!("{msg}"));
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            binary,
            port,
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the server on the same port and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = spawn(&self.binary, self.port);
            if wait_for_port(self.port, Duration::from_secs(3)) {
                self.child = Some(child);
                return;
            }
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not start within 10 s",
                self.port
            );
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(binary: &Path, port: u16) -> Child {
    Command::new(binary)
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--bind",
            "127.0.0.1",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("could not start {}: {e}", binary.display()))
}

fn wait_for_port(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_missing_binary_is_a_clear_failure_not_a_skip() {
    let err = find_redis_server(None, Some(&OsString::from("/nonexistent-dir"))).unwrap_err();
    assert!(
        err.contains("redis-server not found") && err.contains("FLOW_REDIS_SERVER"),
        "{err}"
    );
    let err =
        find_redis_server(Some(OsString::from("/nonexistent/redis-server")), None).unwrap_err();
    assert!(err.contains("is not a file"), "{err}");
}
