//! Fresh random numbers and tokens (deployment ids, debug passwords, SVCUIDs).

/// 64 fresh random bits (the library's one generator, `crate::random`).
pub(crate) fn random_u64() -> u64 {
    crate::random::entropy()
}

pub(crate) fn random_token() -> String {
    format!("{:016x}{:016x}", random_u64(), random_u64())
}
