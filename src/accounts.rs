//! User accounts for the logins that carry a user name (VeNCrypt Plain and X509Plain, RSA-AES).
//!
//! The accounts file has one account per line, `name:hash:access`, where `hash` is an argon2id
//! PHC string and `access` is `full` or `view` (view-only); `#` starts a comment line and blank
//! lines are skipped. `kvnc passwd --users FILE NAME` writes it.
//!
//! Checking a password is deliberately slow (tens of milliseconds on a desktop, around a tenth of
//! a second on the board): run [`Accounts::verify`] on a blocking thread, and bound how many run
//! at once, since each holds [`M_COST_KIB`] of memory while it runs.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, anyhow, bail};
use argon2::password_hash::{self, Output, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Params, Version};
use rfb::Access;

/// Memory of a new hash, in KiB. With [`T_COST`] this is OWASP's recommended minimum for
/// argon2id (and the argon2 crate's default): about 20 ms on a desktop core and, by the same
/// estimate, 100–150 ms on a Raspberry Pi 4's Cortex-A72, within what a login may take. OWASP's
/// cheaper-in-memory equivalents (12 MiB × 3, 9 MiB × 4 passes) cost the same time, so they would
/// buy nothing but a weaker defence against GPUs.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Passes over the memory of a new hash.
pub const T_COST: u32 = 2;
/// Lanes of a new hash: the argon2 crate computes lanes one after another, so more would only
/// cost time, and a login runs on one thread anyway.
pub const P_COST: u32 = 1;
const OUTPUT_LEN: usize = 32;

const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_LEN)) {
    Ok(params) => params,
    // Evaluated at compile time: bad constants fail the build, not a login.
    Err(_) => panic!("invalid argon2 parameters"),
};

/// What [`Accounts::verify`] hashes an unknown user's password against when no account gives
/// the parameters: kvnc's own, with a zero salt and output (no password hashes to zeros).
const DEFAULT_DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA\
                             $AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The accounts of an accounts file. Cheap to share behind an `Arc`; [`Accounts::verify`] takes
/// `&self`.
pub struct Accounts {
    users: HashMap<String, Account>,
    /// An argon2id hash with the same parameters as the first account's that no password
    /// matches: an unknown user's password is checked against it so that the answer takes as long
    /// as for a known user, and user names cannot be probed by timing.
    dummy: String,
    /// How many hashes [`Accounts::verify`] computed, so tests can see the unknown-user path hash.
    #[cfg(test)]
    hashes: std::sync::atomic::AtomicUsize,
}

struct Account {
    /// A PHC string, checked to parse when loaded.
    hash: String,
    access: Access,
}

impl Accounts {
    /// Reads an accounts file. Errors name the file and the line.
    pub fn load(path: &Path) -> anyhow::Result<Accounts> {
        let context = || format!("accounts file {}", path.display());
        let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", context()))?;
        let mode = file.metadata().with_context(context)?.permissions().mode();
        if mode & 0o077 != 0 {
            tracing::warn!(
                "accounts file {} holds password hashes but is open to other users (mode {:04o}): \
                 chmod 600 it",
                path.display(),
                mode & 0o7777
            );
        }
        let mut contents = Vec::new();
        file.read_to_end(&mut contents).with_context(|| format!("cannot read {}", context()))?;
        let accounts = Accounts::parse(utf8(&contents).with_context(context)?).with_context(context)?;
        if accounts.is_empty() {
            tracing::warn!("accounts file {} has no users: nobody can log in with a user name", path.display());
        }
        Ok(accounts)
    }

    /// Parses the contents of an accounts file. Errors name the line.
    pub fn parse(contents: &str) -> anyhow::Result<Accounts> {
        let mut users: HashMap<String, Account> = HashMap::new();
        let mut lines_of: HashMap<&str, usize> = HashMap::new();
        let mut first_hash = None;
        for (index, line) in contents.lines().enumerate() {
            let number = index + 1;
            let Some(entry) = parse_line(line).with_context(|| format!("line {number}"))? else {
                continue;
            };
            if let Some(seen) = lines_of.insert(entry.name, number) {
                bail!("line {number}: user {:?} is already on line {seen}", entry.name);
            }
            first_hash.get_or_insert(entry.hash);
            users.insert(entry.name.to_owned(), Account { hash: entry.hash.to_owned(), access: entry.access });
        }
        let dummy = match first_hash {
            Some(hash) => dummy_like(hash)?,
            None => DEFAULT_DUMMY.to_owned(),
        };
        Ok(Accounts {
            users,
            dummy,
            #[cfg(test)]
            hashes: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// The access `password` gives `user`, or `None` for a wrong password or an unknown user.
    /// Takes about as long either way (one argon2 hash): call it on a blocking thread.
    pub fn verify(&self, user: &str, password: &[u8]) -> Option<Access> {
        match self.users.get(user) {
            Some(account) => match self.check(&account.hash, password) {
                Ok(true) => Some(account.access),
                Ok(false) => None,
                Err(e) => {
                    tracing::warn!("cannot check the password of user {user:?}: {e}");
                    None
                }
            },
            None => {
                // black_box: the result is unused, and the work must not be optimised away.
                let _ = std::hint::black_box(self.check(&self.dummy, password));
                None
            }
        }
    }

    /// How many accounts there are.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` hashes to `phc`.
    fn check(&self, phc: &str, password: &[u8]) -> Result<bool, password_hash::Error> {
        #[cfg(test)]
        self.hashes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let hash = PasswordHash::new(phc)?;
        // The hash's own algorithm and parameters are used, not the default instance's.
        match Argon2::default().verify_password(password, &hash) {
            Ok(()) => Ok(true),
            Err(password_hash::Error::Password) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

// Names and access only: hashes stay out of logs.
impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<(&str, Access)> =
            self.users.iter().map(|(name, account)| (name.as_str(), account.access)).collect();
        names.sort_unstable_by_key(|(name, _)| *name);
        f.debug_struct("Accounts").field("users", &names).finish_non_exhaustive()
    }
}

/// An argon2id PHC string of `password` with kvnc's parameters and a fresh random salt.
pub fn hash_password(password: &[u8]) -> anyhow::Result<String> {
    hash_password_with(password, PARAMS)
}

fn hash_password_with(password: &[u8], params: Params) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow!("no randomness for a password salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).context("cannot encode the password salt")?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password, &salt)
        .context("cannot hash the password")?;
    Ok(hash.to_string())
}

/// One account line.
pub(crate) struct Entry<'a> {
    pub name: &'a str,
    pub hash: &'a str,
    pub access: Access,
}

/// Parses one line of an accounts file: `None` for blank lines and comments.
pub(crate) fn parse_line(line: &str) -> anyhow::Result<Option<Entry<'_>>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    // PHC strings have no ':', and names may not, so the fields split cleanly.
    let fields: Vec<&str> = line.split(':').map(str::trim).collect();
    let [name, hash, access] = fields[..] else {
        bail!("expected NAME:HASH:ACCESS, found {} field(s) separated by ':'", fields.len());
    };
    check_name(name)?;
    check_hash(hash).with_context(|| format!("user {name:?}"))?;
    let access = match access {
        "full" => Access::Full,
        "view" => Access::ViewOnly,
        _ => bail!("user {name:?} has unknown access {access:?}: use full or view"),
    };
    Ok(Some(Entry { name, hash, access }))
}

/// The line [`Accounts::parse`] reads back as this account.
pub(crate) fn format_line(name: &str, hash: &str, access: Access) -> String {
    let access = match access {
        Access::Full => "full",
        Access::ViewOnly => "view",
    };
    format!("{name}:{hash}:{access}")
}

/// The name on an account line, without checking the rest: for editing files line by line.
pub(crate) fn line_name(line: &str) -> Option<&str> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    line.split(':').next().map(str::trim)
}

/// Refuses names that could not be written on an account line and read back the same.
pub(crate) fn check_name(name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        bail!("empty user name");
    }
    if name.contains(':') {
        bail!("user name {name:?} has a ':'");
    }
    if name.chars().any(char::is_control) {
        bail!("user name {name:?} has control characters");
    }
    if name.trim() != name {
        bail!("user name {name:?} starts or ends with white space");
    }
    if name.starts_with('#') {
        bail!("user name {name:?} starts with '#', which makes its line a comment");
    }
    Ok(())
}

/// Checks that `hash` is an argon2id PHC string that can be verified. Its text is never put in
/// the error: a hash is not for logs.
fn check_hash(hash: &str) -> anyhow::Result<()> {
    let form = "not an argon2id hash ($argon2id$v=19$m=...,t=...,p=...$SALT$HASH; `kvnc passwd --users` writes one)";
    let parsed = PasswordHash::new(hash).map_err(|e| anyhow!("{form}: {e}"))?;
    if parsed.algorithm != ARGON2ID_IDENT {
        bail!("{form}: the algorithm is {}", parsed.algorithm);
    }
    if let Some(version) = parsed.version {
        Version::try_from(version).map_err(|e| anyhow!("{form}: version {version}: {e}"))?;
    }
    Params::try_from(&parsed).map_err(|e| anyhow!("{form}: parameters: {e}"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        bail!("{form}: the salt or the hash is missing");
    }
    Ok(())
}

/// A hash with `hash`'s algorithm, version, parameters and output length that no password
/// matches.
fn dummy_like(hash: &str) -> anyhow::Result<String> {
    let mut dummy = PasswordHash::new(hash).map_err(|e| anyhow!("{e}"))?;
    let salt = SaltString::encode_b64(&[0u8; 16]).context("dummy salt")?;
    let length = dummy.hash.map_or(OUTPUT_LEN, |output| output.len());
    dummy.salt = Some(salt.as_salt());
    dummy.hash = Some(Output::new(&vec![0u8; length]).context("dummy hash")?);
    Ok(dummy.to_string())
}

/// `contents` as text; an error names the first line that is not UTF-8.
pub(crate) fn utf8(contents: &[u8]) -> anyhow::Result<&str> {
    std::str::from_utf8(contents).map_err(|e| {
        let line = contents[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow!("line {line}: not UTF-8")
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    /// Cheap parameters: the tests check logic, not cost.
    fn cheap(password: &str) -> String {
        hash_password_with(password.as_bytes(), Params::new(64, 1, 1, None).unwrap()).unwrap()
    }

    fn error(contents: &str) -> String {
        format!("{:#}", Accounts::parse(contents).unwrap_err())
    }

    #[test]
    fn parses_accounts_comments_and_blank_lines() {
        let contents = format!(
            "# kvnc accounts\n\nalice:{}:full\r\n  bob : {} : view  \n# carol:x:full\n",
            cheap("a"),
            cheap("b")
        );
        let accounts = Accounts::parse(&contents).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(format!("{accounts:?}"), r#"Accounts { users: [("alice", Full), ("bob", ViewOnly)], .. }"#);
        assert!(Accounts::parse("# nobody\n\n").unwrap().is_empty());
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        let good = cheap("a");
        let cases = [
            (format!("# c\nalice:{good}\n"), "line 2: expected NAME:HASH:ACCESS, found 2"),
            (format!("alice:{good}:full:x\n"), "line 1: expected NAME:HASH:ACCESS, found 4"),
            (format!("\n\nalice:{good}:admin\n"), "line 3: user \"alice\" has unknown access \"admin\""),
            ("alice:not-a-hash:full\n".to_owned(), "line 1: user \"alice\": not an argon2id hash"),
            (format!("alice:{}:full\n", good.replace("argon2id", "argon2i")), "the algorithm is argon2i"),
            (format!("alice:{}:full\n", good.replace("t=1", "t=0")), "parameters"),
            ("alice:$argon2id$v=19$m=64,t=1,p=1:full\n".to_owned(), "the salt or the hash is missing"),
            (format!("alice:{good}:full\n#\nalice:{good}:view\n"), "line 3: user \"alice\" is already on line 1"),
            (format!(":{good}:full\n"), "line 1: empty user name"),
            (format!("al\tice:{good}:full\n"), "control characters"),
        ];
        for (contents, expected) in cases {
            let message = error(&contents);
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            assert!(!message.contains(&good), "the hash is in {message:?}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = std::env::temp_dir().join(format!("kvnc-accounts-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("users");
        std::fs::write(&file, format!("alice:{}:full\nbob:{}:full\n", cheap("a"), "x")).unwrap();
        let message = format!("{:#}", Accounts::load(&file).unwrap_err());
        assert!(message.contains(&format!("accounts file {}: line 2", file.display())), "{message}");
        std::fs::write(&file, b"# \xff\n").unwrap();
        assert!(format!("{:#}", Accounts::load(&file).unwrap_err()).contains("line 1: not UTF-8"));
        std::fs::write(&file, format!("alice:{}:view\n", cheap("a"))).unwrap();
        assert_eq!(Accounts::load(&file).unwrap().verify("alice", b"a"), Some(Access::ViewOnly));
        assert!(Accounts::load(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn verify_gives_the_account_access_for_the_right_password_only() {
        let contents = format!("alice:{}:full\nbob:{}:view\n", cheap("alice pw"), cheap("bob pw"));
        let accounts = Accounts::parse(&contents).unwrap();
        assert_eq!(accounts.verify("alice", b"alice pw"), Some(Access::Full));
        assert_eq!(accounts.verify("bob", b"bob pw"), Some(Access::ViewOnly));
        assert_eq!(accounts.verify("alice", b"bob pw"), None);
        assert_eq!(accounts.verify("alice", b""), None);
        assert_eq!(accounts.verify("Alice", b"alice pw"), None, "names are case-sensitive");
        assert_eq!(accounts.verify("carol", b"alice pw"), None);
        assert_eq!(accounts.hashes.load(Ordering::Relaxed), 6, "every attempt hashes once");
    }

    #[test]
    fn unknown_users_are_hashed_like_known_ones() {
        let hash = cheap("pw");
        let accounts = Accounts::parse(&format!("alice:{hash}:full\n")).unwrap();
        assert_eq!(accounts.verify("mallory", b"pw"), None);
        assert_eq!(accounts.hashes.load(Ordering::Relaxed), 1);
        let (real, dummy) = (PasswordHash::new(&hash).unwrap(), PasswordHash::new(&accounts.dummy).unwrap());
        assert_eq!((dummy.algorithm, dummy.version, &dummy.params), (real.algorithm, real.version, &real.params));
        assert_eq!(dummy.hash.unwrap().len(), real.hash.unwrap().len());
        assert_ne!(dummy.salt, real.salt);
        // Without accounts, the dummy has kvnc's own parameters.
        let empty = Accounts::parse("").unwrap();
        assert_eq!(empty.verify("alice", b"pw"), None);
        assert_eq!(empty.hashes.load(Ordering::Relaxed), 1);
        let dummy = PasswordHash::new(&empty.dummy).unwrap();
        assert_eq!(Params::try_from(&dummy).unwrap(), PARAMS);
    }

    #[test]
    fn new_hashes_use_kvnc_parameters_and_fresh_salts() {
        let hash = hash_password(b"pw").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert_ne!(hash, hash_password(b"pw").unwrap());
        let accounts = Accounts::parse(&format_line("alice", &hash, Access::Full)).unwrap();
        assert_eq!(accounts.verify("alice", b"pw"), Some(Access::Full));
        assert_eq!(accounts.verify("alice", b"pW"), None);
    }

    #[test]
    fn names_that_would_not_read_back_are_refused() {
        for bad in ["", "a:b", "a\nb", " alice", "alice ", "#alice"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "Alice Smith", "bob@example.com", "ünïcode"] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn accounts_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Accounts>();
    }

    /// One login's cost with kvnc's parameters, to re-check them on the board:
    /// `cargo test --release --lib accounts::tests::verify_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn verify_cost() {
        let accounts = Accounts::parse(&format_line("alice", &hash_password(b"pw").unwrap(), Access::Full)).unwrap();
        // Interleaved, after a first run that maps the memory, so both paths meet the same cache
        // and allocator.
        accounts.verify("alice", b"pw");
        let (mut known, mut unknown) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
        let runs = 10;
        for _ in 0..runs {
            let start = std::time::Instant::now();
            assert_eq!(accounts.verify("alice", b"pw"), Some(Access::Full));
            known += start.elapsed();
            let start = std::time::Instant::now();
            assert_eq!(accounts.verify("mallory", b"pw"), None);
            unknown += start.elapsed();
        }
        let (known, unknown) = (known / runs, unknown / runs);
        println!("one verify: {known:?} (known user), {unknown:?} (unknown user)");
    }
}
