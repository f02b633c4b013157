//! Phone numbers as the visitor types them → E.164 (`+` and 8 to 15 digits), with the dialling
//! conventions of the gateway's home country from config.

/// How numbers without a `+` are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberPlan {
    /// The home country's calling code, digits only (`1`, `44`, `49`).
    pub country_code: String,
    /// The national trunk prefix dropped before the country code is added (`0`; `1` in NANP).
    pub national_prefix: String,
    /// The international call prefix (`00`; `011` in NANP).
    pub international_prefix: String,
}

/// Why a number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    /// Letters or symbols other than the usual separators.
    #[error("{0:?} is not a phone number")]
    NotANumber(String),
    /// Too short or too long for E.164.
    #[error("{0:?} has the wrong length for a phone number")]
    Length(String),
}

/// Normalises `raw` to E.164. Separators (space, `-`, `.`, `(`, `)`, `/`) are ignored.
pub fn normalize(raw: &str, plan: &NumberPlan) -> Result<String, NumberError> {
    let raw = raw.trim();
    if raw.len() > 40 {
        return Err(NumberError::Length(raw.chars().take(40).collect()));
    }
    let mut plus = false;
    let mut digits = String::with_capacity(16);
    for (i, c) in raw.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => plus = true,
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            _ => return Err(NumberError::NotANumber(raw.into())),
        }
    }
    let international = if plus {
        digits
    } else if !plan.international_prefix.is_empty()
        && digits.starts_with(&plan.international_prefix)
    {
        digits[plan.international_prefix.len()..].to_string()
    } else if !plan.national_prefix.is_empty() && digits.starts_with(&plan.national_prefix) {
        format!(
            "{}{}",
            plan.country_code,
            &digits[plan.national_prefix.len()..]
        )
    } else {
        format!("{}{digits}", plan.country_code)
    };
    // E.164: at most 15 digits; nothing real is shorter than 8 with its country code. No country
    // code starts with 0.
    if !(8..=15).contains(&international.len()) || international.starts_with('0') {
        return Err(NumberError::Length(raw.into()));
    }
    Ok(format!("+{international}"))
}

/// How a trunk wants the numbers it is asked to dial (`trunks[].dial_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DialFormat {
    /// `+15550102000` (RFC 3966 global number; most SIP trunks).
    #[default]
    E164,
    /// `15550102000`: the same digits without the `+`.
    Digits,
    /// As dialled at home: numbers in the home country with the national prefix (`020 7946 0018`
    /// → `02079460018`), others with the international prefix (`0049301234567`).
    National,
}

/// The user part to dial for `e164` (as [`normalize`] returns it): in `format`, after `prefix`
/// (a carrier's tech prefix, or empty).
pub fn dial_string(e164: &str, format: DialFormat, prefix: &str, plan: &NumberPlan) -> String {
    let digits = e164.strip_prefix('+').unwrap_or(e164);
    let number = match format {
        DialFormat::E164 => format!("+{digits}"),
        DialFormat::Digits => digits.to_string(),
        DialFormat::National => match digits.strip_prefix(plan.country_code.as_str()) {
            Some(national) if !plan.country_code.is_empty() => {
                format!("{}{national}", plan.national_prefix)
            }
            _ => format!("{}{digits}", plan.international_prefix),
        },
    };
    format!("{prefix}{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanp() -> NumberPlan {
        NumberPlan {
            country_code: "1".into(),
            national_prefix: "1".into(),
            international_prefix: "011".into(),
        }
    }
    fn uk() -> NumberPlan {
        NumberPlan {
            country_code: "44".into(),
            national_prefix: "0".into(),
            international_prefix: "00".into(),
        }
    }

    #[test]
    fn national_international_and_plus_forms_agree() {
        for raw in [
            "(555) 010-2000",
            "555.010.2000",
            "1 555 010 2000",
            "+1 555 010 2000",
            "011 1 555 010 2000",
        ] {
            assert_eq!(normalize(raw, &nanp()).unwrap(), "+15550102000", "{raw}");
        }
        for raw in ["020 7946 0018", "+44 20 7946 0018", "0044 20 7946 0018"] {
            assert_eq!(normalize(raw, &uk()).unwrap(), "+442079460018", "{raw}");
        }
        assert_eq!(normalize("00 49 30 123456", &uk()).unwrap(), "+4930123456");
    }

    #[test]
    fn junk_and_wrong_lengths_are_refused() {
        for raw in [
            "",
            "12",
            "555-CALL-NOW",
            "+1 555 010 2000;ext=1",
            "1+5550102000",
            "+1234567890123456",
            "sip:x@y",
            "+0 555 010 2000",
        ] {
            assert!(normalize(raw, &nanp()).is_err(), "{raw}");
        }
        assert!(normalize(&"9".repeat(100), &nanp()).is_err());
    }

    #[test]
    fn dial_strings_as_carriers_want_them() {
        let uk = uk();
        assert_eq!(
            dial_string("+442079460018", DialFormat::E164, "", &uk),
            "+442079460018"
        );
        assert_eq!(
            dial_string("+442079460018", DialFormat::Digits, "", &uk),
            "442079460018"
        );
        assert_eq!(
            dial_string("+442079460018", DialFormat::National, "", &uk),
            "02079460018"
        );
        assert_eq!(
            dial_string("+49301234567", DialFormat::National, "", &uk),
            "0049301234567"
        );
        assert_eq!(
            dial_string("+15550102000", DialFormat::National, "", &nanp()),
            "15550102000"
        );
        assert_eq!(
            dial_string("+4930123456", DialFormat::National, "", &nanp()),
            "0114930123456"
        );
        assert_eq!(
            dial_string("+15550102000", DialFormat::Digits, "1010#", &nanp()),
            "1010#15550102000"
        );
    }
}
