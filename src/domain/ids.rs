//! Client-chosen identifiers. They are cheap to clone (shared `Arc<str>`) because the
//! snapshot and the indexes hold many copies.

use std::{borrow::Borrow, fmt, sync::Arc};

use super::FieldViolation;

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

fn check_id(raw: &str) -> Result<(), FieldViolation> {
    if raw.is_empty() {
        return Err(FieldViolation::new("", "must not be empty"));
    }
    if raw.len() > MAX_ID_LEN {
        return Err(FieldViolation::new(
            "",
            format!("must be at most {MAX_ID_LEN} characters, not {}", raw.len()),
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-');
    if let Some(c) = raw.chars().find(|&c| !allowed(c)) {
        // The id is at most 128 bytes here: quoted whole.
        return Err(FieldViolation::new(
            "",
            format!(
                "may contain only ASCII letters, digits and . _ : @ - (found {c:?} in {raw:?})"
            ),
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Parses a client-supplied id: 1-128 characters of `[A-Za-z0-9._:@-]`.
            pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
                check_id(raw)?;
                Ok(Self(Arc::from(raw)))
            }

            /// Checks a client-supplied id without allocating.
            pub fn validate(raw: &str) -> Result<(), FieldViolation> {
                check_id(raw)
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
    };
}

id_type!(
    /// Id of a skill.
    SkillId
);
id_type!(
    /// Id of a role.
    RoleId
);
id_type!(
    /// Id of an org unit.
    TeamId
);
id_type!(
    /// Id of a person.
    PersonId
);
id_type!(
    /// Client-supplied id of an assessment; the idempotency key.
    AssessmentId
);
id_type!(
    /// Public id of an access token (the secret is separate).
    TokenId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_of_allowed_characters_parses() {
        assert_eq!(
            PersonId::parse("p-1.a_b:c@d").unwrap().as_str(),
            "p-1.a_b:c@d"
        );
    }

    #[test]
    fn empty_long_and_odd_ids_are_rejected() {
        assert!(SkillId::parse("").is_err());
        assert!(SkillId::parse(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(SkillId::parse(&"x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(SkillId::parse("has space").is_err());
        assert!(SkillId::parse("é").is_err());
    }
}
