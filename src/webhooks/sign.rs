//! Standard Webhooks signatures (standardwebhooks.com, symmetric `v1`): HMAC-SHA256 of
//! `{id}.{timestamp}.{body}` keyed by the secret's decoded bytes, base64 with padding.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

use crate::error::{Error, Result};

const PREFIX: &str = "whsec_";
/// Random bytes in a new secret (the spec allows 24 to 64).
const SECRET_BYTES: usize = 32;

/// A fresh secret's bytes.
pub fn fresh() -> Result<Vec<u8>> {
    let mut buf = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut buf).map_err(|e| Error::internal(format!("no randomness: {e}")))?;
    Ok(buf)
}

/// How a secret is shown to the administrator: `whsec_` + standard base64.
pub fn show(secret: &[u8]) -> String {
    format!("{PREFIX}{}", STANDARD.encode(secret))
}

/// The bytes of a shown secret. Strict: the prefix is required and the base64 must be
/// canonical, so a mistyped secret is an error rather than a different, weaker key.
pub fn parse(shown: &str) -> Result<Vec<u8>> {
    shown
        .strip_prefix(PREFIX)
        .and_then(|b| STANDARD.decode(b).ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| Error::InvalidValue("a signing secret is whsec_ followed by base64".into()))
}

/// The `webhook-signature` value: one `v1,<base64>` per secret, space separated, in the
/// order given (the current secret first).
pub fn signature(secrets: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = Vec::with_capacity(id.len() + body.len() + 24);
    signed.extend_from_slice(id.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(timestamp.to_string().as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(body);
    secrets
        .iter()
        .map(|secret| {
            let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
            format!("v1,{}", STANDARD.encode(hmac::sign(&key, &signed).as_ref()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own test vector (standard-webhooks libraries/rust `test_sign`).
    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let key = parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        assert_eq!(
            signature(&[key], "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn every_valid_secret_signs_and_shown_secrets_round_trip() {
        let (a, b) = (fresh().unwrap(), fresh().unwrap());
        assert_eq!(a.len(), 32);
        assert_eq!(parse(&show(&a)).unwrap(), a);
        let both = signature(&[a.clone(), b.clone()], "evt_1", 1, b"{}");
        let tokens: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            tokens,
            [
                signature(&[a], "evt_1", 1, b"{}"),
                signature(&[b], "evt_1", 1, b"{}")
            ]
        );
        for bad in [
            "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "whsec_",
            "whsec_C2FV*",
            "whsec_C2FVsBQ",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
