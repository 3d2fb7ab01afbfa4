//! A user name and password sent as they are (VeNCrypt Plain and X509Plain):
//! `U32 username length, U32 password length, username, password`.

use crate::error::ProtocolError;

/// Longest user name or password taken; longer ones are refused before anything is buffered
/// beyond this (the lengths come from an unauthenticated peer).
pub const MAX_LEN: u32 = 1024;

/// A login to check.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// Lossily decoded: a name that is not UTF-8 matches no account anyway.
    pub username: String,
    pub password: Vec<u8>,
}

impl std::fmt::Debug for Login {
    // The password never reaches a log, even a debug one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("username", &self.username).field("password", &"<hidden>").finish()
    }
}

/// Parses a Plain login at the front of `buf`: `None` until all of it has arrived.
pub fn parse(buf: &[u8]) -> Result<Option<(Login, usize)>, ProtocolError> {
    let Some(header) = buf.get(..8) else {
        return Ok(None);
    };
    let length = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let (user_len, password_len) = (length(0), length(4));
    if user_len > MAX_LEN || password_len > MAX_LEN {
        return Err(ProtocolError::CredentialsTooLong(user_len.max(password_len)));
    }
    let (user_len, password_len) = (user_len as usize, password_len as usize);
    let total = 8 + user_len + password_len;
    let Some(body) = buf.get(8..total) else {
        return Ok(None);
    };
    let (username, password) = body.split_at(user_len);
    let login = Login { username: String::from_utf8_lossy(username).into_owned(), password: password.to_vec() };
    Ok(Some((login, total)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(user: &[u8], password: &[u8]) -> Vec<u8> {
        let mut m = (user.len() as u32).to_be_bytes().to_vec();
        m.extend((password.len() as u32).to_be_bytes());
        m.extend(user);
        m.extend(password);
        m
    }

    #[test]
    fn waits_for_all_of_it_then_parses() {
        let m = message(b"admin", b"s3cret");
        for cut in 0..m.len() {
            assert!(parse(&m[..cut]).unwrap().is_none(), "cut at {cut}");
        }
        let (login, used) = parse(&m).unwrap().unwrap();
        assert_eq!((login.username.as_str(), login.password.as_slice(), used), ("admin", &b"s3cret"[..], m.len()));
        assert!(!format!("{login:?}").contains("s3cret"), "no password in Debug");
    }

    #[test]
    fn oversized_lengths_refused_from_the_header_alone() {
        let mut header = (MAX_LEN + 1).to_be_bytes().to_vec();
        header.extend(1u32.to_be_bytes());
        assert!(matches!(parse(&header), Err(ProtocolError::CredentialsTooLong(_))));
        let mut header = 1u32.to_be_bytes().to_vec();
        header.extend(u32::MAX.to_be_bytes());
        assert!(parse(&header).is_err());
    }
}
