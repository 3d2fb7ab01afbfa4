//! A throwaway certificate authority and a server certificate it signed for 127.0.0.1 and
//! localhost, made with the openssl command line, for viewers that verify kvnc's certificate
//! (TigerVNC's `-X509CA`) the way a user with their own CA would set it up.

use std::path::PathBuf;
use std::process::Command;

use crate::viewers::{TempDir, require_tool};

pub struct TestCa {
    dir: TempDir,
}

impl TestCa {
    #[allow(clippy::new_without_default)] // Making one runs openssl four times: no default value.
    pub fn new() -> TestCa {
        let openssl = require_tool("openssl", "openssl");
        let dir = TempDir::new("kvnc-test-ca");
        let run = |args: &[&str]| {
            let out = Command::new(&openssl).current_dir(dir.path()).args(args).output().expect("running openssl");
            assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        run(&[
            &["req", "-x509"][..],
            &new_key,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=kvnc test CA"],
        ]
        .concat());
        run(&[&["req"][..], &new_key, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]]
            .concat());
        std::fs::write(dir.path().join("san.cnf"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n").unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ]);
        TestCa { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The CA certificate a viewer trusts.
    pub fn ca(&self) -> PathBuf {
        self.file("ca.pem")
    }

    /// `--tls-cert PATH --tls-key PATH` for kvnc.
    pub fn kvnc_args(&self) -> Vec<String> {
        let path = |name: &str| self.file(name).to_string_lossy().into_owned();
        vec!["--tls-cert".into(), path("server.pem"), "--tls-key".into(), path("server.key")]
    }
}
