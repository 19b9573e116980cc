//! Threeport's field encryption (spec 2.9, `pkg/encryption/v0/encryption.go`): AES-GCM with a
//! 12-byte random nonce, no AAD; ciphertext = base64std(nonce || sealed || tag).

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;

type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>;

/// Why a key could not be parsed or a value could not be encrypted or decrypted. The
/// messages are Go's, where Go has one.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key is not standard base64.
    #[error("encryption key is not valid base64: {0}")]
    KeyBase64(base64::DecodeError),
    /// The key decodes to this many bytes instead of 16, 24 or 32.
    #[error("crypto/aes: invalid key size {0}")]
    KeySize(usize),
    /// The encrypted value is not standard base64.
    #[error("ciphertext is not valid base64: {0}")]
    CipherBase64(base64::DecodeError),
    /// The encrypted value is shorter than the nonce.
    #[error("ciphertext too short")]
    TooShort,
    /// GCM authentication failed (wrong key, or an altered value), or encryption failed.
    #[error("cipher: message authentication failed")]
    Auth,
}

/// A decoded AES key (16, 24 or 32 bytes, as `aes.NewCipher` accepts).
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl Key {
    /// Parse Threeport's `ENCRYPTION_KEY` (standard base64 with padding).
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let raw = STANDARD.decode(s.trim()).map_err(CryptoError::KeyBase64)?;
        match raw.len() {
            16 | 24 | 32 => Ok(Key(raw)),
            n => Err(CryptoError::KeySize(n)),
        }
    }

    fn seal(&self, nonce: &[u8; 12], plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let n = Nonce::from_slice(nonce);
        let r = match self.0.len() {
            16 => Aes128Gcm::new_from_slice(&self.0).map(|c| c.encrypt(n, plain)),
            24 => Aes192Gcm::new_from_slice(&self.0).map(|c| c.encrypt(n, plain)),
            _ => Aes256Gcm::new_from_slice(&self.0).map(|c| c.encrypt(n, plain)),
        };
        r.map_err(|_| CryptoError::KeySize(self.0.len()))?
            .map_err(|_| CryptoError::Auth)
    }

    fn open(&self, nonce: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let n = Nonce::from_slice(nonce);
        let r = match self.0.len() {
            16 => Aes128Gcm::new_from_slice(&self.0).map(|c| c.decrypt(n, sealed)),
            24 => Aes192Gcm::new_from_slice(&self.0).map(|c| c.decrypt(n, sealed)),
            _ => Aes256Gcm::new_from_slice(&self.0).map(|c| c.decrypt(n, sealed)),
        };
        r.map_err(|_| CryptoError::KeySize(self.0.len()))?
            .map_err(|_| CryptoError::Auth)
    }

    /// Encrypt like Threeport's `Encrypt`.
    pub fn encrypt(&self, plain: &str) -> Result<String, CryptoError> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let sealed = self.seal(&nonce, plain.as_bytes())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }

    /// Decrypt like Threeport's `Decrypt`.
    pub fn decrypt(&self, cipher: &str) -> Result<String, CryptoError> {
        let raw = STANDARD.decode(cipher).map_err(CryptoError::CipherBase64)?;
        if raw.len() < 12 {
            return Err(CryptoError::TooShort);
        }
        let (nonce, sealed) = raw.split_at(12);
        let plain = self.open(nonce, sealed)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_key_sizes() {
        for n in [16usize, 24, 32] {
            let key = Key::from_base64(&STANDARD.encode(vec![7u8; n])).expect("key");
            let c = key.encrypt("secret").expect("enc");
            assert_ne!(c, "secret");
            assert_eq!(key.decrypt(&c).expect("dec"), "secret");
        }
        assert!(Key::from_base64(&STANDARD.encode([1u8; 10])).is_err());
    }
}
