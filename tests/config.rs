//! The configuration file, `KVNC_*` variables and the command line, with the real binary:
//! `kvnc check` on good and bad files, and `kvnc serve` taking `listen` and `name` from the file
//! unless a variable or a flag says otherwise.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const KVNC: &str = env!("CARGO_BIN_EXE_kvnc");

/// A directory of the test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("kvnc-config-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `kvnc ARGS` with `env` added, and none of the variables this test sets inherited.
fn kvnc(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(KVNC);
    command.args(args).env("NO_COLOR", "1").env("RUST_LOG", "info").stdin(Stdio::null());
    for variable in ["KVNC_CONFIG", "KVNC_LISTEN", "KVNC_NAME"] {
        command.env_remove(variable);
    }
    command.envs(env.iter().copied());
    command
}

fn output(args: &[&str]) -> Output {
    kvnc(args, &[]).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_a_good_file_and_shows_where_settings_come_from() {
    let dir = TempDir::new("good");
    let password = dir.write("password", "secret\n");
    let config = dir.write(
        "kvnc.toml",
        &format!(
            "# a board\nlisten = \"0.0.0.0:5900\"\nname = \"from-file\"\npassword-file = \"{}\"\nno-control-socket = true\n",
            password.display()
        ),
    );
    let config = config.to_str().unwrap();
    let result = output(&["--config", config, "check", "--layout", "us"]);
    let stdout = text(&result.stdout);
    assert!(result.status.success(), "{stdout}{}", text(&result.stderr));
    assert!(stdout.contains(&format!("configuration file: {config}")), "{stdout}");
    assert!(stdout.contains(&format!("listen = 0.0.0.0:5900    # {config}:2")), "{stdout}");
    assert!(stdout.contains(&format!("name = from-file    # {config}:3")), "{stdout}");
    assert!(stdout.contains("layout = us    # command line"), "{stdout}");
    assert!(stdout.contains("configuration OK"), "{stdout}");
}

#[test]
fn check_and_serve_name_the_line_of_a_bad_key_or_value() {
    let dir = TempDir::new("bad");
    let config = dir.write(
        "kvnc.toml",
        "listen = \"127.0.0.1:0\"\nname = \"x\"\nlissten = \"127.0.0.1:1\"\npaste = \"sometimes\"\n",
    );
    let config = config.to_str().unwrap();
    for command in ["check", "serve"] {
        let result = output(&["--config", config, command]);
        let stderr = text(&result.stderr);
        assert!(!result.status.success(), "{command}: {stderr}");
        assert!(stderr.contains(&format!("{config}:3: unknown key `lissten`")), "{command}: {stderr}");
        assert!(stderr.contains(&format!("{config}:4: paste: invalid value 'sometimes'")), "{command}: {stderr}");
    }
    // Well-formed, but pointing at a password file that is not there.
    let missing = dir.0.join("no-such-password");
    let config = dir.write("missing.toml", &format!("\npassword-file = \"{}\"\n", missing.display()));
    let result = output(&["--config", config.to_str().unwrap(), "check"]);
    let stderr = text(&result.stderr);
    assert!(!result.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("{}:2: password-file: cannot read password file", config.display())), "{stderr}");
}

/// A running `kvnc serve`, killed on drop.
struct Served {
    child: Child,
    address: String,
}

impl Served {
    /// Starts `kvnc ARGS` and waits for its `listening on ADDRESS` line.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut child = kvnc(args, env).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut log = String::new();
        while let Ok(line) = received.recv_timeout(Duration::from_secs(20)) {
            log.push_str(&line);
            log.push('\n');
            if let Some((_, address)) = line.split_once("listening on ") {
                return Served { child, address: address.trim().to_owned() };
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("kvnc {args:?} did not start listening; its log:\n{log}");
    }

    /// The desktop name a viewer is told (RFB 3.8, security None).
    fn desktop_name(&self) -> String {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut version = [0u8; 12];
        stream.read_exact(&mut version).unwrap();
        stream.write_all(b"RFB 003.008\n").unwrap();
        let mut count = [0u8; 1];
        stream.read_exact(&mut count).unwrap();
        let mut types = vec![0u8; usize::from(count[0])];
        stream.read_exact(&mut types).unwrap();
        assert!(types.contains(&1), "security None offered: {types:?}");
        stream.write_all(&[1]).unwrap();
        let mut result = [0u8; 4];
        stream.read_exact(&mut result).unwrap();
        assert_eq!(result, [0; 4]);
        stream.write_all(&[1]).unwrap();
        let mut init = [0u8; 24];
        stream.read_exact(&mut init).unwrap();
        let mut name = vec![0u8; u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize];
        stream.read_exact(&mut name).unwrap();
        text(&name)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

#[test]
fn serve_takes_the_file_then_the_environment_then_the_command_line() {
    let dir = TempDir::new("serve");
    // Other loopback addresses than the default, to tell where `listen` came from; no TLS and no
    // control socket, so nothing is written outside the test's directory.
    let config = dir.write(
        "kvnc.toml",
        "listen = \"127.0.0.2:0\"\nname = \"from-file\"\nno-tls = true\nno-control-socket = true\n",
    );
    let config = config.to_str().unwrap();
    let served = Served::start(&["--config", config, "serve"], &[]);
    assert_eq!((host(&served.address), served.desktop_name().as_str()), ("127.0.0.2", "from-file"));
    drop(served);

    let env = [("KVNC_LISTEN", "127.0.0.3:0"), ("KVNC_NAME", "from-env")];
    let served = Served::start(&["--config", config, "serve"], &env);
    assert_eq!((host(&served.address), served.desktop_name().as_str()), ("127.0.0.3", "from-env"));
    drop(served);

    let served = Served::start(&["serve", "--config", config, "--listen", "127.0.0.4:0", "--name", "from-flag"], &env);
    assert_eq!((host(&served.address), served.desktop_name().as_str()), ("127.0.0.4", "from-flag"));
    drop(served);

    // KVNC_CONFIG names the file when --config does not.
    let served = Served::start(&["serve"], &[("KVNC_CONFIG", config)]);
    assert_eq!(served.desktop_name(), "from-file");
}

#[test]
fn the_packaged_configuration_checks_clean() {
    let packaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/kvnc.toml");
    let result = output(&["--config", packaged.to_str().unwrap(), "check"]);
    assert!(result.status.success(), "{}{}", text(&result.stdout), text(&result.stderr));
    assert!(text(&result.stdout).contains("every option is at its default"), "{}", text(&result.stdout));
}
