//! The Unified Social Credit Code of GB 32100-2015: 18 characters, the last a check character.

/// The 31 characters a code may use (I, O, S, V and Z are excluded); a character's index is its value.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// Weights of positions 1..=17 (3^(i-1) mod 31).
const WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// The check character for the first 17 characters of a code.
pub fn check_char(first17: &[u8]) -> Option<char> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.iter().zip(WEIGHTS) {
        sum += value(*c)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(ALPHABET[check as usize] as char)
}

/// Validates a code; the error says what is wrong in words a user can act on.
pub fn validate(code: &str) -> Result<(), String> {
    let bytes = code.as_bytes();
    if bytes.len() != 18 {
        return Err(format!(
            "a Unified Social Credit Code has 18 characters, got {}",
            code.chars().count()
        ));
    }
    if let Some((i, c)) = code
        .char_indices()
        .find(|&(_, c)| value(c as u8).is_none() || !c.is_ascii())
    {
        return Err(format!(
            "character {c:?} at position {} is not allowed (digits and capital letters except I, O, S, V, Z)",
            i + 1
        ));
    }
    if !bytes[2..8].iter().all(u8::is_ascii_digit) {
        return Err("positions 3-8 must be the 6-digit administrative division code".into());
    }
    let expected = check_char(&bytes[..17]).ok_or("invalid characters")?;
    if bytes[17] as char != expected {
        return Err(format!(
            "wrong check character {:?} (GB 32100-2015 gives {expected:?} for the first 17 characters)",
            bytes[17] as char
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_published_codes() {
        // Codes printed on public business licences.
        for code in [
            "91350100M000100Y43",
            "91110000802100433B",
            "91440300708461136T",
        ] {
            assert_eq!(validate(code), Ok(()), "{code}");
        }
    }

    #[test]
    fn rejects_wrong_check_character() {
        let err = validate("91350100M000100Y44").unwrap_err();
        assert!(err.contains("check character"), "{err}");
    }

    #[test]
    fn rejects_bad_shape() {
        assert!(
            validate("91350100M000100Y4")
                .unwrap_err()
                .contains("18 characters")
        );
        assert!(
            validate("91350100M00010OY43")
                .unwrap_err()
                .contains("position 15")
        );
        assert!(
            validate("91A50100M000100Y43")
                .unwrap_err()
                .contains("administrative")
        );
    }
}
