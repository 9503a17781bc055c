//! Private serde helpers shared by the generated shape modules.
//!
//! * [`blob`] / [`opt_blob`]: standard base64 (RFC 4648 alphabet, padded on output; padding
//!   optional and ASCII whitespace ignored on input). Decode failures are serde errors.
//! * [`null_as_default`]: `null` (or absence, with `#[serde(default)]`) becomes `T::default()`.
//! * [`wire_enum!`]: string enums that keep unknown values in an `Unknown(String)` variant.
//! * [`union_deserialize!`]: tolerant decoding of Smithy unions (unknown keys and `null`
//!   members are skipped; the first known non-null member wins).
//! * [`Redacted`]: stand-in printed by the manual `Debug` impls of sensitive shapes.

use std::cell::Cell;
use std::fmt;
use std::io;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Standard alphabet; writes padding, accepts input with or without it.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The longest base64 text written from a buffer on the stack (the blobs of 768 bytes
/// or less, or one piece of a longer one).
const STACK_BASE64: usize = 1024;

/// The most blob bytes encoded into one [`STACK_BASE64`] piece (a multiple of 3: only
/// the last piece of a blob is padded).
const STACK_BLOB: usize = STACK_BASE64 / 4 * 3;

thread_local! {
    /// Set while [`write_json`] serializes: a blob is then handed to its serializer as
    /// bytes, which [`WireFormatter`] writes as base64 text.
    static BLOBS_AS_BYTES: Cell<bool> = const { Cell::new(false) };
}

/// Writes bytes as a standard padded base64 string.
///
/// Under [`write_json`] (every request the client sends), the bytes go to
/// [`WireFormatter`], which writes the base64 text straight into the output: serde_json
/// would otherwise check every byte of it for characters to escape, and base64 has none.
/// Under any other serializer (`serde_json::to_string`, `to_value`, another format), a
/// short blob is encoded on the stack and written whole, a longer one in pieces with
/// `collect_str`, which serde_json writes without building the whole text first.
fn serialize_base64<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    if BLOBS_AS_BYTES.try_with(Cell::get).unwrap_or(false) {
        return serializer.serialize_bytes(bytes);
    }
    let mut text = [0u8; STACK_BASE64];
    let short = BASE64
        .encode_slice(bytes, &mut text)
        .ok()
        .and_then(|len| std::str::from_utf8(text.get(..len)?).ok());
    match short {
        Some(text) => serializer.serialize_str(text),
        None => serializer.collect_str(&base64::display::Base64Display::new(bytes, &BASE64)),
    }
}

/// serde_json's compact output, but for a byte array: only a blob is serialized as bytes
/// (under [`write_json`]), and it is written as a base64 string.
struct WireFormatter;

impl serde_json::ser::Formatter for WireFormatter {
    fn write_byte_array<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        value: &[u8],
    ) -> io::Result<()> {
        let mut text = [0u8; STACK_BASE64];
        writer.write_all(b"\"")?;
        for piece in value.chunks(STACK_BLOB) {
            let len = BASE64
                .encode_slice(piece, &mut text)
                .map_err(io::Error::other)?;
            writer.write_all(text.get(..len).unwrap_or_default())?;
        }
        writer.write_all(b"\"")
    }
}

/// `value` as compact JSON: the same text as `serde_json::to_vec`, with its blobs
/// written by [`WireFormatter`] (see [`write_json`]).
#[cfg(feature = "emulator")]
pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    write_json(&mut out, value).map(|()| out)
}

/// Appends `value` as compact JSON to `out`: the same text as `serde_json::to_writer`,
/// with its blobs written by [`WireFormatter`].
pub(crate) fn write_json<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> serde_json::Result<()> {
    /// Puts the flag back as it was, also when a `Serialize` impl panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = BLOBS_AS_BYTES.try_with(|flag| flag.set(self.0));
        }
    }
    let Ok(before) = BLOBS_AS_BYTES.try_with(|flag| flag.replace(true)) else {
        // The thread is exiting (its locals are gone): blobs are written as text.
        return serde_json::to_writer(out, value);
    };
    let _restore = Restore(before);
    value.serialize(&mut serde_json::Serializer::with_formatter(
        out,
        WireFormatter,
    ))
}

/// Decodes standard base64, ignoring ASCII whitespace (MIME-style line breaks).
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    // Whitespace is rare: looked for only when the text does not decode as it is.
    match BASE64.decode(text) {
        Err(e) if text.bytes().any(|b| b.is_ascii_whitespace()) => {
            let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            BASE64.decode(compact).map_err(|_| e)
        }
        decoded => decoded,
    }
}

/// Reads a JSON string as a base64 blob, decoding from the borrowed text (no copy of it).
struct Base64Visitor;

impl serde::de::Visitor<'_> for Base64Visitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base64 string")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        decode_base64(text).map_err(|e| E::custom(format_args!("invalid base64 blob: {e}")))
    }
}

/// A base64 blob as a standalone deserializable value (used by union decoding).
pub(crate) struct Base64Blob(pub(crate) Vec<u8>);

impl From<Base64Blob> for Vec<u8> {
    fn from(blob: Base64Blob) -> Self {
        blob.0
    }
}

impl<'de> Deserialize<'de> for Base64Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        blob::deserialize(deserializer).map(Base64Blob)
    }
}

/// `#[serde(with = "encoding::blob")]` for a required `Vec<u8>` member.
pub(crate) mod blob {
    use super::*;

    /// Writes the bytes as a base64 JSON string.
    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serialize_base64(bytes, serializer)
    }

    /// Reads a base64 JSON string; anything else (including `null`) is an error.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_str(Base64Visitor)
    }

    /// Like [`deserialize`], but `null` yields an empty blob (for tolerant response decoding).
    pub(crate) fn deserialize_nullable<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        Ok(super::opt_blob::deserialize(deserializer)?.unwrap_or_default())
    }
}

/// `#[serde(with = "encoding::opt_blob")]` for an optional `Option<Vec<u8>>` member.
pub(crate) mod opt_blob {
    use super::*;

    /// Writes `Some` bytes as base64 (pair with `skip_serializing_if = "Option::is_none"`).
    pub(crate) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => serialize_base64(bytes, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Reads a base64 string, or `null` as `None`.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Ok(Option::<Base64Blob>::deserialize(deserializer)?.map(|b| b.0))
    }
}

/// Decodes `null` as `T::default()` (combine with `#[serde(default)]` so absence does too).
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Printed in place of secret values by `Debug` implementations.
pub(crate) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Defines a string enum with known variants and an `Unknown(String)` catch-all.
///
/// There is deliberately no `From<&str>`/`From<String>`: code names a variant, so a typo
/// does not compile. A value the crate does not know is still decoded (as `Unknown`), and
/// can be sent only explicitly: `Enum::Unknown(..)` or `Enum::from_wire(..)`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version of the crate does not know, kept verbatim.
            Unknown(String),
        }

        impl $name {
            /// Every value known to this version of the crate.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),+];

            /// The wire value (e.g. what goes into the JSON string).
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $wire, )+
                    $name::Unknown(value) => value.as_str(),
                }
            }

            /// Parses a wire value; unknown values become [`Self::Unknown`]. The explicit way
            /// to send a value this crate does not know (there is no `From<&str>`, so that a
            /// misspelled value does not compile).
            pub fn from_wire(value: &str) -> Self {
                match value {
                    $( $wire => $name::$variant, )+
                    other => $name::Unknown(other.to_owned()),
                }
            }

            /// Whether this is a value known to this version of the crate.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Unknown(_))
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = ::std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
                Ok(match Self::from_wire(&value) {
                    $name::Unknown(_) => $name::Unknown(value.into_owned()),
                    known => known,
                })
            }
        }
    };
}

/// Implements `Deserialize` for a Smithy union enum (externally tagged on the wire).
///
/// Unlike serde's derived externally-tagged decoding, this ignores unknown keys and
/// `null` members, and takes the first known non-null member. A union with no known
/// member is an error.
macro_rules! union_deserialize {
    ($name:ident { $( $wire:literal => $variant:ident($de:ty) ),+ $(,)? }) => {
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct UnionVisitor;

                impl<'de> ::serde::de::Visitor<'de> for UnionVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " union object"))
                    }

                    fn visit_map<A: ::serde::de::MapAccess<'de>>(self, mut map: A) -> Result<$name, A::Error> {
                        let mut found: Option<$name> = None;
                        while let Some(key) = map.next_key::<::std::borrow::Cow<'de, str>>()? {
                            match &*key {
                                $(
                                    $wire if found.is_none() => {
                                        if let Some(value) = map.next_value::<Option<$de>>()? {
                                            found = Some($name::$variant(value.into()));
                                        }
                                    }
                                )+
                                _ => {
                                    map.next_value::<::serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        found.ok_or_else(|| {
                            ::serde::de::Error::custom(concat!(
                                "no known member set in ",
                                stringify!($name),
                                " union"
                            ))
                        })
                    }
                }

                deserializer.deserialize_map(UnionVisitor)
            }
        }
    };
}

pub(crate) use union_deserialize;
pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        PublishToIoTCoreRequest, PublishToTopicRequest, Qos, UpdateThingShadowRequest,
    };

    fn wire(value: &impl Serialize) -> Vec<u8> {
        let mut out = b"kept ".to_vec();
        write_json(&mut out, value).expect("write_json");
        assert_eq!(out.get(..5), Some(&b"kept "[..]), "appended");
        out.split_off(5)
    }

    #[test]
    fn write_json_writes_what_serde_json_writes_and_leaves_other_serializers_alone() {
        let bytes: Vec<u8> = (0..2400u32).map(|i| (i * 131 % 251) as u8).collect();
        for len in (0..=70).chain([767, 768, 769, 1535, 1536, 1537, 2303, 2304, 2400]) {
            let blob = &bytes[..len];
            let publish = PublishToTopicRequest::binary("t/\"q\"", blob);
            let shadow = UpdateThingShadowRequest::new("x", blob);
            let cloud = PublishToIoTCoreRequest::binary("c", Qos::AtLeastOnce, blob);
            assert_eq!(
                wire(&publish),
                serde_json::to_vec(&publish).unwrap(),
                "{len}"
            );
            assert_eq!(wire(&shadow), serde_json::to_vec(&shadow).unwrap(), "{len}");
            assert_eq!(wire(&cloud), serde_json::to_vec(&cloud).unwrap(), "{len}");
        }
        // Outside write_json a blob is a string again, for every serializer.
        let publish = PublishToTopicRequest::binary("t", b"ab");
        let value = serde_json::to_value(&publish).unwrap();
        assert_eq!(
            value["publishMessage"]["binaryMessage"]["message"],
            serde_json::json!("YWI=")
        );
    }

    #[test]
    fn a_panic_inside_write_json_does_not_leave_blobs_as_bytes() {
        struct Panics;
        impl Serialize for Panics {
            fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                panic!("a Serialize impl that panics");
            }
        }
        let caught = std::panic::catch_unwind(|| write_json(&mut Vec::new(), &Panics));
        assert!(caught.is_err());
        assert!(!BLOBS_AS_BYTES.with(Cell::get));
        let text = serde_json::to_string(&UpdateThingShadowRequest::new("x", b"ab")).unwrap();
        assert_eq!(text, r#"{"thingName":"x","payload":"YWI="}"#);
    }
}
