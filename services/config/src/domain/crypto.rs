//! Secrets at rest: AES-256-GCM under a key-encryption key (KEK). A sealed secret is
//! `nonce (12 bytes) || ciphertext+tag`; the nonce is fresh and random for every write, and the
//! credential's name and field are bound in as associated data so a ciphertext cannot be
//! moved to another row or field.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

/// A 256-bit key-encryption key. Debug never shows the key.
#[derive(Clone)]
pub struct Kek {
    key: [u8; 32],
    id: String,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("key-encryption key must be 32 bytes, base64-encoded")]
    BadKey,
    #[error("secret was sealed under key {found}, not {expected}")]
    WrongKey { found: String, expected: String },
    #[error("stored secret cannot be decrypted (corrupt, or sealed for another record)")]
    Undecryptable,
}

impl Kek {
    pub fn from_bytes(key: [u8; 32]) -> Self {
        // The id identifies the key without revealing it: a truncated hash.
        let digest = Sha256::digest(key);
        let id = hex_prefix(&digest[..6]);
        Self { key, id }
    }

    /// From standard base64 of exactly 32 bytes (surrounding whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self::from_bytes(key))
    }

    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::from_bytes(key)
    }

    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key)
    }

    /// Stored next to each ciphertext so rotation knows which key sealed it.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn seal(&self, plaintext: &str, aad: &str) -> Vec<u8> {
        let cipher = Aes256Gcm::new((&self.key).into());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption of an in-memory buffer with a valid key cannot fail; an empty result
        // would simply never decrypt.
        let ct = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &str) -> Result<String, CryptoError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Undecryptable);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CryptoError::Undecryptable)?;
        let cipher = Aes256Gcm::new((&self.key).into());
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| CryptoError::Undecryptable)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Undecryptable)
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The associated data binding a sealed secret to its credential and field.
pub fn aad(credential_name: &str, field: &str) -> String {
    format!("{credential_name}#{field}")
}

/// A display form that shows the key's prefix family and last four characters only, e.g.
/// `sk-…abcd`. Short keys show nothing but the ellipsis, so little of them leaks.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 12 {
        return "…".to_owned();
    }
    let prefix: String = match key.find('-') {
        Some(i) if i <= 4 => key[..=i].to_owned(),
        _ => String::new(),
    };
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let kek = Kek::generate();
        let a = kek.seal("sk-secret", "n#api_key");
        let b = kek.seal("sk-secret", "n#api_key");
        assert_ne!(a, b, "a fresh nonce per write");
        assert_eq!(kek.open(&a, "n#api_key").unwrap(), "sk-secret");
        assert!(kek.open(&a, "other#api_key").is_err());
        assert!(Kek::generate().open(&a, "n#api_key").is_err());
        assert!(!a.windows(9).any(|w| w == b"sk-secret"));
    }

    #[test]
    fn kek_parsing_and_debug() {
        let kek = Kek::generate();
        let again = Kek::from_base64(&kek.to_base64()).unwrap();
        assert_eq!(kek.id(), again.id());
        assert_eq!(
            Kek::from_base64("c2hvcnQ=").unwrap_err(),
            CryptoError::BadKey
        );
        assert!(!format!("{kek:?}").contains(&kek.to_base64()));
    }

    #[test]
    fn masking() {
        assert_eq!(
            mask_key(concat!("sk-proj-", "abcdefghijklmnop1234")),
            "sk-…1234"
        );
        assert_eq!(mask_key("abcdefghijklmnop"), "…mnop");
        assert_eq!(mask_key("short"), "…");
    }
}
