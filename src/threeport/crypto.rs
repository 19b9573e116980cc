//! AES-GCM in Threeport's format (spec 2.9, `pkg/encryption/v0/encryption.go`).
//!
//! The API encrypts `KubernetesRuntimeInstance.CertificateKey` and `.ConnectionToken` (and the
//! AWS account keys) at rest and returns the ciphertext on GET; controllers decrypt with the key
//! from `ENCRYPTION_KEY`. The wire format is
//! `base64.StdEncoding( nonce(12) || ciphertext || tag(16) )` with no associated data, and the key
//! is standard base64 (with padding) of 16, 24 or 32 bytes (Go's `aes.NewCipher` accepts all
//! three, Threeport generates 32).
//!
//! The key never appears in `Debug` output or errors, so an `EncryptionKey` can sit inside
//! configuration structs that are logged.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Length of the GCM nonce Go's `cipher.NewGCM` uses, prepended to every ciphertext.
pub const NONCE_LEN: usize = 12;
/// Length of the GCM authentication tag appended by `Seal`.
pub const TAG_LEN: usize = 16;

type Aes192Gcm = AesGcm<Aes192, U12>;

/// Why a key could not be loaded or a value could not be decrypted. The messages never contain
/// key bytes or plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The key is not standard base64 with padding.
    #[error("encryption key is not valid standard base64 (with padding)")]
    KeyNotBase64,
    /// The key decodes to this many bytes instead of 16, 24 or 32.
    #[error("encryption key decodes to {0} bytes; AES needs 16, 24 or 32")]
    KeyLength(usize),
    /// The encrypted value is not standard base64.
    #[error("encrypted value is not valid standard base64")]
    CiphertextNotBase64,
    /// The encrypted value decodes to this many bytes, fewer than the nonce needs.
    #[error("encrypted value is too short: {0} bytes, need at least {NONCE_LEN} for the nonce")]
    TooShort(usize),
    /// Wrong key, or a corrupted or truncated ciphertext (GCM authentication failed).
    #[error("decryption failed: wrong key or corrupted value")]
    Decrypt,
    /// The decrypted value is not a string (not UTF-8).
    #[error("decrypted value is not valid UTF-8")]
    NotUtf8,
    /// AES-GCM refused to encrypt (a plaintext beyond GCM's length limit).
    #[error("encryption failed")]
    Encrypt,
}

#[derive(Clone)]
enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

/// An AES key parsed from `ENCRYPTION_KEY`. Holds only the expanded cipher; `Debug` prints the
/// key size, never the key.
#[derive(Clone)]
pub struct EncryptionKey {
    cipher: Cipher,
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

impl std::str::FromStr for EncryptionKey {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_base64(s)
    }
}

impl EncryptionKey {
    /// Parse standard base64 (with padding) of a 16, 24 or 32 byte key. Surrounding whitespace
    /// is ignored because keys read from Secret files or env often end in a newline (Go's
    /// decoder skips newlines too).
    pub fn from_base64(b64: &str) -> Result<Self, CryptoError> {
        let raw = STANDARD
            .decode(b64.trim())
            .map_err(|_| CryptoError::KeyNotBase64)?;
        Self::from_bytes(&raw)
    }

    /// Build a key from raw bytes (16, 24 or 32).
    pub fn from_bytes(raw: &[u8]) -> Result<Self, CryptoError> {
        let cipher = match raw.len() {
            16 => Cipher::Aes128(Box::new(
                Aes128Gcm::new_from_slice(raw).map_err(|_| CryptoError::KeyLength(raw.len()))?,
            )),
            24 => Cipher::Aes192(Box::new(
                Aes192Gcm::new_from_slice(raw).map_err(|_| CryptoError::KeyLength(raw.len()))?,
            )),
            32 => Cipher::Aes256(Box::new(
                Aes256Gcm::new_from_slice(raw).map_err(|_| CryptoError::KeyLength(raw.len()))?,
            )),
            n => return Err(CryptoError::KeyLength(n)),
        };
        Ok(Self { cipher })
    }

    /// A fresh random AES-256 key and its base64 form, as Threeport's `GenerateKey` makes
    /// them (for the sandbox and tooling).
    pub fn generate() -> (Self, String) {
        let raw = Aes256Gcm::generate_key(&mut OsRng);
        let b64 = STANDARD.encode(raw);
        (
            Self {
                cipher: Cipher::Aes256(Box::new(Aes256Gcm::new(&raw))),
            },
            b64,
        )
    }

    /// Key size in bits (128, 192 or 256).
    pub fn bits(&self) -> u32 {
        match self.cipher {
            Cipher::Aes128(_) => 128,
            Cipher::Aes192(_) => 192,
            Cipher::Aes256(_) => 256,
        }
    }

    /// Decrypt a value stored by the API and return it as a string (every encrypted Threeport
    /// field is a string: PEM keys, tokens, access keys).
    pub fn decrypt(&self, b64: &str) -> Result<String, CryptoError> {
        String::from_utf8(self.decrypt_bytes(b64)?).map_err(|_| CryptoError::NotUtf8)
    }

    /// Decrypt to raw bytes: base64-decode, split off the 12-byte nonce, open the rest.
    pub fn decrypt_bytes(&self, b64: &str) -> Result<Vec<u8>, CryptoError> {
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| CryptoError::CiphertextNotBase64)?;
        if raw.len() < NONCE_LEN {
            return Err(CryptoError::TooShort(raw.len()));
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::<U12>::from_slice(nonce);
        let opened = match &self.cipher {
            Cipher::Aes128(c) => c.decrypt(nonce, sealed),
            Cipher::Aes192(c) => c.decrypt(nonce, sealed),
            Cipher::Aes256(c) => c.decrypt(nonce, sealed),
        };
        opened.map_err(|_| CryptoError::Decrypt)
    }

    /// Encrypt with a fresh random nonce, in the format the API stores (for tests, the
    /// sandbox and tooling; controllers never encrypt, the API does).
    pub fn encrypt(&self, plaintext: &str) -> Result<String, CryptoError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let mut fixed = [0u8; NONCE_LEN];
        fixed.copy_from_slice(nonce.as_slice());
        self.encrypt_with_nonce(plaintext.as_bytes(), fixed)
    }

    /// Encrypt with a caller-chosen nonce. Reusing a nonce with the same key breaks GCM, so
    /// this exists only for reproducible test vectors.
    pub fn encrypt_with_nonce(
        &self,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, CryptoError> {
        let n = Nonce::<U12>::from_slice(&nonce);
        let sealed = match &self.cipher {
            Cipher::Aes128(c) => c.encrypt(n, plaintext),
            Cipher::Aes192(c) => c.encrypt(n, plaintext),
            Cipher::Aes256(c) => c.encrypt(n, plaintext),
        }
        .map_err(|_| CryptoError::Encrypt)?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(STANDARD.encode(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors produced independently with Python `cryptography` 48.0.0:
    //   from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    //   nonce = bytes(range(200, 212))
    //   base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, None))
    // with key = bytes(range(32)) (K256), bytes(range(100, 116)) (K128) and
    // bytes(range(50, 74)) (K192).
    const K256: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K128: &str = "ZGVmZ2hpamtsbW5vcHFycw==";
    const K192: &str = "MjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJ";
    const NONCE: [u8; 12] = [
        0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3,
    ];
    const PT256: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";
    const V256: &str = "yMnKy8zNzs/Q0dLTPFVM9quOvmc9cj/sTUfLRLLOuulQLohvqPAWzPe8huOBxWPjmDIHhx/SAen0N1OznpFL6s1btkReOA3Q+H9qEevSrlI794YX/zYOyPcewC+aVh8=";
    const V256_EMPTY: &str = "yMnKy8zNzs/Q0dLTMWeFmM4/IWwXmPT3mqh/Zw==";
    const V128: &str = "yMnKy8zNzs/Q0dLTJLMeNwPqp8Cieul6sPXWVPl/Ix6oswyTU2RQ0hxoEIs=";
    const V192: &str = "yMnKy8zNzs/Q0dLTrz2M5g9BGNL6ZBM2/KZ4zuko+C9mqfSWg897ahlkow==";

    fn key(b64: &str) -> EncryptionKey {
        EncryptionKey::from_base64(b64).expect("test key")
    }

    #[test]
    fn decrypts_python_vectors() {
        assert_eq!(key(K256).decrypt(V256).unwrap(), PT256);
        assert_eq!(key(K256).decrypt(V256_EMPTY).unwrap(), "");
        assert_eq!(key(K128).decrypt(V128).unwrap(), "k8s-aws-v1.token");
        assert_eq!(key(K192).decrypt(V192).unwrap(), "hello threeport");
        assert_eq!(key(K256).bits(), 256);
        assert_eq!(key(K128).bits(), 128);
        assert_eq!(key(K192).bits(), 192);
    }

    #[test]
    fn encrypt_matches_python_vectors() {
        assert_eq!(
            key(K256)
                .encrypt_with_nonce(PT256.as_bytes(), NONCE)
                .unwrap(),
            V256
        );
        assert_eq!(
            key(K128)
                .encrypt_with_nonce(b"k8s-aws-v1.token", NONCE)
                .unwrap(),
            V128
        );
    }

    #[test]
    fn random_nonce_round_trip() {
        let (k, b64) = EncryptionKey::generate();
        let a = k.encrypt("secret").unwrap();
        let b = k.encrypt("secret").unwrap();
        assert_ne!(a, b, "nonces must differ");
        assert_eq!(k.decrypt(&a).unwrap(), "secret");
        assert_eq!(key(&b64).decrypt(&b).unwrap(), "secret");
    }

    #[test]
    fn wrong_key_fails() {
        let other = key("AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        assert_eq!(other.decrypt(V256), Err(CryptoError::Decrypt));
        // A 128-bit key cannot open a 256-bit ciphertext.
        assert_eq!(key(K128).decrypt(V256), Err(CryptoError::Decrypt));
    }

    #[test]
    fn truncated_and_malformed_values() {
        let k = key(K256);
        // Fewer than 12 bytes after decoding.
        assert_eq!(k.decrypt("AAECAw=="), Err(CryptoError::TooShort(4)));
        assert_eq!(k.decrypt(""), Err(CryptoError::TooShort(0)));
        // Nonce only, or nonce plus a partial tag: authentication fails.
        assert_eq!(k.decrypt("yMnKy8zNzs/Q0dLT"), Err(CryptoError::Decrypt));
        let raw = STANDARD.decode(V256).unwrap();
        let cut = STANDARD.encode(&raw[..raw.len() - 1]);
        assert_eq!(k.decrypt(&cut), Err(CryptoError::Decrypt));
        let mut flipped = raw.clone();
        flipped[20] ^= 1;
        assert_eq!(
            k.decrypt(&STANDARD.encode(flipped)),
            Err(CryptoError::Decrypt)
        );
        assert_eq!(
            k.decrypt("not base64!"),
            Err(CryptoError::CiphertextNotBase64)
        );
        // Standard encoding requires padding, as Go's StdEncoding does.
        assert_eq!(
            k.decrypt("yMnKy8zNzs/Q0dLTMWeFmM4/IWwXmPT3mqh/Zw"),
            Err(CryptoError::CiphertextNotBase64)
        );
    }

    #[test]
    fn non_utf8_plaintext_is_an_error() {
        let k = key(K256);
        let v = k.encrypt_with_nonce(&[0xff, 0xfe], NONCE).unwrap();
        assert_eq!(k.decrypt(&v), Err(CryptoError::NotUtf8));
        assert_eq!(k.decrypt_bytes(&v).unwrap(), vec![0xff, 0xfe]);
    }

    #[test]
    fn key_parsing() {
        assert_eq!(
            EncryptionKey::from_base64("AAECAw==").unwrap_err(),
            CryptoError::KeyLength(4)
        );
        assert_eq!(
            EncryptionKey::from_base64("%%%").unwrap_err(),
            CryptoError::KeyNotBase64
        );
        // Unpadded base64 is rejected (Threeport's keys are StdEncoding with padding).
        assert_eq!(
            EncryptionKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap_err(),
            CryptoError::KeyNotBase64
        );
        // A trailing newline (Secret file) is tolerated.
        let k: EncryptionKey = format!("{K256}\n").parse().unwrap();
        assert_eq!(k.decrypt(V256).unwrap(), PT256);
    }

    #[test]
    fn debug_does_not_leak_key() {
        let k = key(K256);
        let dbg = format!("{k:?}");
        assert_eq!(dbg, "EncryptionKey { bits: 256, .. }");
        assert!(!dbg.contains("AAEC"));
    }
}
