//! Certificate serial numbers: 127 bits from the system CSPRNG, positive, at most 20 octets.
use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};

use crate::core::error::{Error, Result};

/// A certificate serial number: the big-endian magnitude of a positive INTEGER, minimal
/// (no leading zero octet).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// 16 random octets with the top bit cleared (positive); a zero first octet is redrawn so
    /// the encoding is always 16 octets and the entropy is 127 bits minus a negligible sliver.
    pub fn random() -> Result<Self> {
        let rng = SystemRandom::new();
        let mut bytes = [0u8; 16];
        loop {
            rng.fill(&mut bytes)
                .map_err(|_| Error::Internal("system random generator failed".into()))?;
            bytes[0] &= 0x7f;
            if bytes[0] != 0 {
                return Ok(Serial(bytes.to_vec()));
            }
        }
    }

    /// Parses hexadecimal (upper or lower case, colons allowed, leading zeros ignored).
    pub fn parse_hex(s: &str) -> Result<Self> {
        let clean: String = s.trim().chars().filter(|c| *c != ':').collect();
        let clean = clean.strip_prefix("0x").unwrap_or(&clean);
        let padded = if clean.len() % 2 == 1 {
            format!("0{clean}")
        } else {
            clean.to_string()
        };
        let bytes = hex::decode(&padded)
            .map_err(|_| Error::field("serial", format!("{s:?} is not hexadecimal")))?;
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        let bytes = bytes[first..].to_vec();
        if bytes.is_empty() || bytes.len() > 20 {
            return Err(Error::field(
                "serial",
                format!("{s:?} is not a valid serial number"),
            ));
        }
        Ok(Serial(bytes))
    }

    /// From the DER INTEGER content of a certificate (strips the sign octet).
    pub fn from_der_content(bytes: &[u8]) -> Self {
        let first = bytes
            .iter()
            .position(|b| *b != 0)
            .unwrap_or(bytes.len().saturating_sub(1));
        Serial(bytes[first..].to_vec())
    }

    /// Big-endian magnitude.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lowercase hexadecimal, the form stored and shown everywhere.
    pub fn hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.hex())
    }
}

impl fmt::Debug for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Serial({})", self.hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_serials_are_positive_and_distinct() {
        let a = Serial::random().unwrap();
        let b = Serial::random().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_bytes().len(), 16);
        assert!(a.as_bytes()[0] > 0 && a.as_bytes()[0] < 0x80);
    }

    #[test]
    fn hex_round_trip() {
        let s = Serial::random().unwrap();
        assert_eq!(Serial::parse_hex(&s.hex()).unwrap(), s);
        assert_eq!(Serial::parse_hex("00:AB:cd").unwrap().hex(), "abcd");
        assert!(Serial::parse_hex("xyz").is_err());
        assert!(Serial::parse_hex("00").is_err());
    }
}
