//! Small hashes and encodings: HMAC-SHA1 session passwords, digest ids,
//! base64, deterministic bytes for nonces.

/// Deterministic bytes from `seed` (session passwords, SASL nonces).
pub(crate) fn seeded_bytes<const N: usize>(seed: u64) -> [u8; N] {
    let mut x = seed;
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(8) {
        x = splitmix64(x);
        chunk.copy_from_slice(&x.to_be_bytes()[..chunk.len()]);
    }
    out
}

/// HMAC-SHA1 (RFC 2104) of `msg` under `key` (at most one 64-byte block).
pub(crate) fn hmac_sha1(key: &[u8; 32], msg: &[u8]) -> [u8; 20] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = sha1_smol::Sha1::new();
    inner.update(&ipad);
    inner.update(msg);
    let mut outer = sha1_smol::Sha1::new();
    outer.update(&opad);
    outer.update(&inner.digest().bytes());
    outer.digest().bytes()
}

pub(super) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `user:base64(sha1("user:password"))`, ZooKeeper's digest id.
pub(crate) fn digest_id(auth: &[u8]) -> String {
    let text = String::from_utf8_lossy(auth);
    let user = text.split(':').next().unwrap_or("");
    let hash = sha1_smol::Sha1::from(text.as_bytes()).digest().bytes();
    format!("{user}:{}", base64(&hash))
}

pub(super) fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
