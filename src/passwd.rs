//! `kvnc passwd`: writes a VNC password file, or adds, replaces or deletes one user of an
//! accounts file (see [`crate::accounts`]).
//!
//! Files are replaced atomically ([`crate::private_file`]).

use std::io::{BufRead, ErrorKind, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use rfb::Access;

use crate::accounts::{self, Accounts};

/// What a new accounts file starts with, for whoever opens it in an editor.
const ACCOUNTS_HEADER: &str = "# kvnc accounts: NAME:ARGON2ID-HASH:ACCESS (full or view), one per line.\n\
                               # Edit with `kvnc passwd --users FILE NAME [--view-only | --delete]`.\n";

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("file").required(true).args(["vnc", "users"])))]
pub struct PasswdArgs {
    /// Write the VNC password file FILE (for `serve --password-file` or
    /// `--view-only-password-file`): the password on its first line, in plain text. VNC
    /// Authentication uses only its first 8 bytes.
    #[arg(long, value_name = "FILE")]
    pub vnc: Option<PathBuf>,
    /// Add or replace user NAME in the accounts file FILE, for logins with a user name
    /// (VeNCrypt Plain, RSA-AES). The rest of the file is kept as it is.
    #[arg(long, value_name = "FILE", requires = "name")]
    pub users: Option<PathBuf>,
    /// The user to add, replace or delete (with --users).
    #[arg(value_name = "NAME", requires = "users", conflicts_with = "vnc")]
    pub name: Option<String>,
    /// Give NAME view-only access (default: full access).
    #[arg(long, requires = "users", conflicts_with = "vnc")]
    pub view_only: bool,
    /// Delete NAME from the accounts file instead.
    #[arg(long, requires = "users", conflicts_with_all = ["vnc", "view_only", "stdin"])]
    pub delete: bool,
    /// Read the password from the first line of standard input instead of asking twice on the
    /// terminal (the default when standard input is not a terminal).
    #[arg(long)]
    pub stdin: bool,
}

/// What [`set_user`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Replaced,
}

pub fn run(args: &PasswdArgs) -> anyhow::Result<()> {
    match (&args.vnc, &args.users, &args.name) {
        (Some(path), None, None) => {
            let password = read_password(args.stdin, "VNC password")?;
            write_vnc_password(path, &password)?;
            println!("wrote the VNC password to {}", path.display());
        }
        (None, Some(path), Some(name)) if args.delete => {
            delete_user(path, name)?;
            println!("deleted user {name} from {}", path.display());
        }
        (None, Some(path), Some(name)) => {
            let access = if args.view_only { Access::ViewOnly } else { Access::Full };
            let change = set_user(path, name, access, || read_password(args.stdin, &format!("Password for {name}")))?;
            let what = match change {
                Change::Added => "added",
                Change::Replaced => "replaced",
            };
            let access = if args.view_only { "view-only" } else { "full" };
            println!("{what} user {name} ({access} access) in {}", path.display());
        }
        _ => bail!("give --vnc FILE, or --users FILE NAME"),
    }
    Ok(())
}

/// A password from the terminal, typed twice without echo, or else from standard input's first
/// line (for scripts). Refuses an empty one.
fn read_password(from_stdin: bool, prompt: &str) -> anyhow::Result<Vec<u8>> {
    let stdin = std::io::stdin();
    let password = if from_stdin || !stdin.is_terminal() {
        first_line(stdin.lock()).context("cannot read the password from standard input")?
    } else {
        let cannot = || "cannot read the password from the terminal (--stdin reads standard input)";
        let password = rpassword::prompt_password(format!("{prompt}: ")).with_context(cannot)?;
        let again = rpassword::prompt_password(format!("{prompt} (again): ")).with_context(cannot)?;
        if password != again {
            bail!("the two passwords differ");
        }
        password.into_bytes()
    };
    if password.is_empty() {
        bail!("refusing an empty password");
    }
    Ok(password)
}

/// The first line, without its line ending.
fn first_line(mut reader: impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok(line)
}

/// Replaces `path` with a VNC password file: the password and a line ending, which is what
/// `serve --password-file` reads.
fn write_vnc_password(path: &Path, password: &[u8]) -> anyhow::Result<()> {
    if password.is_empty() {
        bail!("refusing an empty password");
    }
    // The file is read as one line, and a trailing '\r' is taken for part of its line ending.
    if password.contains(&b'\n') || password.contains(&b'\r') {
        bail!("a VNC password cannot have a line break");
    }
    if password.len() > 8 {
        tracing::warn!("VNC Authentication uses only the first 8 bytes of the password ({} given)", password.len());
    }
    let mut contents = password.to_vec();
    contents.push(b'\n');
    crate::private_file::replace(path, &contents)
        .with_context(|| format!("cannot write password file {}", path.display()))
}

/// Adds `name` with the password from `password` and `access`, or replaces its line. The
/// password is asked for only once the file is known to be readable and valid.
fn set_user(
    path: &Path,
    name: &str,
    access: Access,
    password: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Change> {
    accounts::check_name(name)?;
    let existing = read_accounts(path)?;
    let password = password()?;
    if password.is_empty() {
        bail!("refusing an empty password");
    }
    let line = accounts::format_line(name, &accounts::hash_password(&password)?, access);
    let (contents, replaced) = match &existing {
        Some(text) => replace_line(text, name, Some(&line)),
        None => (format!("{ACCOUNTS_HEADER}{line}\n"), false),
    };
    write_accounts(path, &contents)?;
    Ok(if replaced { Change::Replaced } else { Change::Added })
}

/// Removes `name`'s line, keeping the rest of the file.
fn delete_user(path: &Path, name: &str) -> anyhow::Result<()> {
    let existing = read_accounts(path)?.ok_or_else(|| anyhow!("there is no accounts file {}", path.display()))?;
    let (contents, found) = replace_line(&existing, name, None);
    if !found {
        bail!("accounts file {} has no user {name:?}", path.display());
    }
    write_accounts(path, &contents)
}

/// The accounts file's text, checked as the server would read it, or `None` when there is none.
fn read_accounts(path: &Path) -> anyhow::Result<Option<String>> {
    let context = || format!("accounts file {}", path.display());
    let contents = match std::fs::read(path) {
        Ok(contents) => contents,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", context())),
    };
    let text = accounts::utf8(&contents).with_context(context)?;
    // Refuse to edit a file the server would refuse anyway: the error names the line to fix.
    Accounts::parse(text).with_context(context)?;
    Ok(Some(text.to_owned()))
}

fn write_accounts(path: &Path, contents: &str) -> anyhow::Result<()> {
    // What is written must load: a bug here must not lock everyone out.
    Accounts::parse(contents).context("the edited accounts file would not load")?;
    crate::private_file::replace(path, contents.as_bytes())
        .with_context(|| format!("cannot write accounts file {}", path.display()))
}

/// `text` with `name`'s account line replaced by `new_line`, or removed when it is `None`;
/// `new_line` is appended when `name` has no line. Other lines are kept byte for byte. Returns
/// whether `name` had a line.
fn replace_line(text: &str, name: &str, new_line: Option<&str>) -> (String, bool) {
    let mut out = String::with_capacity(text.len() + new_line.map_or(0, str::len) + 1);
    let mut found = false;
    for line in text.split_inclusive('\n') {
        if accounts::line_name(line) != Some(name) {
            out.push_str(line);
            continue;
        }
        if let (Some(new_line), false) = (new_line, found) {
            out.push_str(new_line);
            // Keep the file's line endings.
            out.push_str(if line.ends_with("\r\n") { "\r\n" } else { "\n" });
        }
        found = true;
    }
    if let (Some(new_line), false) = (new_line, found) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(new_line);
        out.push('\n');
    }
    (out, found)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        passwd: PasswdArgs,
    }

    fn parse(argv: &[&str]) -> Result<PasswdArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("passwd").chain(argv.iter().copied())).map(|cli| cli.passwd)
    }

    /// A fresh directory for one test.
    fn temp_dir(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kvnc-passwd-test-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn files_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    fn pw(password: &str) -> impl FnOnce() -> anyhow::Result<Vec<u8>> + use<> {
        let password = password.as_bytes().to_vec();
        move || Ok(password)
    }

    #[test]
    fn command_line_forms() {
        let vnc = parse(&["--vnc", "/etc/kvnc/pw"]).unwrap();
        assert_eq!(
            (vnc.vnc.as_deref(), vnc.users.as_deref(), vnc.stdin),
            (Some(Path::new("/etc/kvnc/pw")), None, false)
        );
        let user = parse(&["--users", "/etc/kvnc/users", "alice", "--view-only", "--stdin"]).unwrap();
        assert_eq!(
            (user.users.as_deref(), user.name.as_deref(), user.view_only, user.delete, user.stdin),
            (Some(Path::new("/etc/kvnc/users")), Some("alice"), true, false, true)
        );
        let delete = parse(&["--users", "u", "--delete", "bob"]).unwrap();
        assert_eq!((delete.name.as_deref(), delete.delete), (Some("bob"), true));
        for bad in [
            &[][..],
            &["--vnc", "a", "--users", "b", "alice"],
            &["--vnc", "a", "alice"],
            &["--vnc", "a", "--view-only"],
            &["--vnc", "a", "--delete"],
            &["--users", "u"],
            &["--users", "u", "alice", "--delete", "--view-only"],
            &["--users", "u", "alice", "--delete", "--stdin"],
            &["alice"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn first_line_without_its_ending() {
        assert_eq!(first_line(&b"s3cret\r\nmore\n"[..]).unwrap(), b"s3cret");
        assert_eq!(first_line(&b"s3cret"[..]).unwrap(), b"s3cret");
        assert_eq!(first_line(&b" spaced \n"[..]).unwrap(), b" spaced ");
        assert_eq!(first_line(&b"\n"[..]).unwrap(), b"");
        assert_eq!(first_line(&b""[..]).unwrap(), b"");
    }

    #[test]
    fn vnc_password_file_is_one_line_and_private() {
        let dir = temp_dir("vnc");
        let file = dir.join("pw");
        write_vnc_password(&file, b"s3cret").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"s3cret\n");
        assert_eq!(mode(&file), 0o600);
        write_vnc_password(&file, b"longer than eight").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"longer than eight\n");
        assert_eq!(files_in(&dir), ["pw"], "no temporary file is left behind");
        for bad in [&b""[..], b"two\nlines", b"cr\r"] {
            assert!(write_vnc_password(&file, bad).is_err(), "{bad:?}");
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"longer than eight\n", "a refused password changes nothing");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replacing_keeps_the_mode_and_follows_symbolic_links() {
        let dir = temp_dir("mode");
        let file = dir.join("pw");
        std::fs::write(&file, "old\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink("pw", &link).unwrap();
        write_vnc_password(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&file).unwrap(), b"new\n");
        assert_eq!(mode(&file), 0o640);
        // As root (CI), the owner is kept too: a service user's file stays readable by it.
        if std::fs::metadata(&file).unwrap().uid() == 0 {
            std::os::unix::fs::chown(&file, Some(4321), Some(4322)).unwrap();
            write_vnc_password(&file, b"newer").unwrap();
            let metadata = std::fs::metadata(&file).unwrap();
            assert_eq!((metadata.uid(), metadata.gid()), (4321, 4322));
        }
        std::fs::create_dir(dir.join("sub")).unwrap();
        assert!(write_vnc_password(&dir.join("sub"), b"pw").is_err(), "a directory is not replaced");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn users_are_added_replaced_and_deleted_in_place() {
        let dir = temp_dir("users");
        let file = dir.join("users");
        assert_eq!(set_user(&file, "alice", Access::Full, pw("alice pw")).unwrap(), Change::Added);
        assert_eq!(mode(&file), 0o600);
        assert!(std::fs::read_to_string(&file).unwrap().starts_with(ACCOUNTS_HEADER));

        // Hand-written lines and comments stay as they are, byte for byte.
        let alice = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{alice}\n# the night shift\r\n")).unwrap();
        assert_eq!(set_user(&file, "bob", Access::ViewOnly, pw("bob pw")).unwrap(), Change::Added);
        let both = std::fs::read_to_string(&file).unwrap();
        assert!(both.starts_with(&format!("{alice}\n# the night shift\r\nbob:$argon2id$")), "{both}");
        assert!(both.ends_with(":view\n"), "{both}");
        let accounts = Accounts::load(&file).unwrap();
        assert_eq!(accounts.verify("alice", b"alice pw"), Some(Access::Full));
        assert_eq!(accounts.verify("bob", b"bob pw"), Some(Access::ViewOnly));

        assert_eq!(set_user(&file, "alice", Access::ViewOnly, pw("new pw")).unwrap(), Change::Replaced);
        let replaced = std::fs::read_to_string(&file).unwrap();
        assert_eq!(replaced.lines().count(), both.lines().count());
        assert!(replaced.contains(both.lines().find(|line| line.starts_with("bob:")).unwrap()));
        let accounts = Accounts::load(&file).unwrap();
        assert_eq!(accounts.verify("alice", b"alice pw"), None);
        assert_eq!(accounts.verify("alice", b"new pw"), Some(Access::ViewOnly));

        delete_user(&file, "alice").unwrap();
        let deleted = std::fs::read_to_string(&file).unwrap();
        let alice = replaced.lines().find(|line| line.starts_with("alice:")).unwrap();
        assert_eq!(deleted, replaced.replacen(&format!("{alice}\n"), "", 1));
        let accounts = Accounts::load(&file).unwrap();
        assert_eq!((accounts.len(), accounts.verify("bob", b"bob pw")), (1, Some(Access::ViewOnly)));
        assert!(delete_user(&file, "alice").unwrap_err().to_string().contains("no user \"alice\""));
        assert!(delete_user(&dir.join("missing"), "bob").is_err());
        assert_eq!(files_in(&dir), ["users"], "no temporary file is left behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_broken_file_or_bad_name_is_refused_before_the_password_is_asked() {
        let dir = temp_dir("broken");
        let file = dir.join("users");
        let broken = "# users\nalice:not-a-hash:full\n";
        std::fs::write(&file, broken).unwrap();
        let asked = std::cell::Cell::new(false);
        let ask = || {
            asked.set(true);
            Ok(b"pw".to_vec())
        };
        let message = format!("{:#}", set_user(&file, "bob", Access::Full, ask).unwrap_err());
        assert!(message.contains(&format!("accounts file {}: line 2", file.display())), "{message}");
        assert!(!asked.get());
        assert_eq!(std::fs::read_to_string(&file).unwrap(), broken);
        for bad in ["", "a:b", "tab\there", " alice", "#alice"] {
            assert!(set_user(&dir.join("new"), bad, Access::Full, pw("pw")).is_err(), "{bad:?}");
        }
        assert!(set_user(&dir.join("new"), "alice", Access::Full, pw("")).is_err(), "empty password");
        assert_eq!(files_in(&dir), ["users"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replace_line_edits_only_the_named_account() {
        let text = "# a\nalice:H1:full\nbob:H2:view";
        assert_eq!(replace_line(text, "bob", Some("bob:H3:full")), ("# a\nalice:H1:full\nbob:H3:full\n".into(), true));
        assert_eq!(replace_line(text, "carol", Some("carol:H4:view")), (format!("{text}\ncarol:H4:view\n"), false));
        assert_eq!(replace_line(text, "alice", None), ("# a\nbob:H2:view".into(), true));
        assert_eq!(replace_line(text, "a", None), (text.into(), false), "comments are not accounts");
        assert_eq!(replace_line("", "alice", Some("alice:H:full")), ("alice:H:full\n".into(), false));
    }
}
