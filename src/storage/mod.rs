//! Where what must last is kept: a SQLite file (the embedded default) or a PostgreSQL server
//! (`postgres://...`), shared by several gateway nodes. Each store (`records::store`,
//! `callback::store`) has its own interface with both implementations; this module holds what
//! they share: telling a path from a URL, and the PostgreSQL connection with its migrations.
//!
//! - [`pg`]: one connection per store, reconnected on demand, driven from a plain thread; the
//!   `schema_version` migrations under an advisory lock.

pub mod pg;

use std::path::{Path, PathBuf};

/// A configured `database`: a SQLite file (or `:memory:`) or a PostgreSQL URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// A SQLite file, `:memory:` for a throwaway one.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://user@host:port/db`).
    Postgres(String),
}

impl Database {
    /// Reads a `database` setting: `postgres://` / `postgresql://` is a server, anything else a path.
    pub fn parse(setting: &Path) -> Database {
        let text = setting.to_string_lossy();
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Database::Postgres(text.into_owned())
        } else {
            Database::Sqlite(setting.to_path_buf())
        }
    }

    /// Whether this is a PostgreSQL server.
    pub fn is_postgres(setting: &Path) -> bool {
        matches!(Database::parse(setting), Database::Postgres(_))
    }
}

/// A URL with its password (if any) replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_a_server_anything_else_a_file() {
        assert_eq!(
            Database::parse(Path::new("postgres://c2c@127.0.0.1:5432/c2c")),
            Database::Postgres("postgres://c2c@127.0.0.1:5432/c2c".into())
        );
        assert!(Database::is_postgres(Path::new("postgresql://h/db")));
        assert_eq!(
            Database::parse(Path::new(":memory:")),
            Database::Sqlite(":memory:".into())
        );
        assert!(!Database::is_postgres(Path::new("/var/lib/c2c/records.db")));
        assert_eq!(
            redact("postgres://c2c:secret@db:5432/c2c"),
            "postgres://c2c:***@db:5432/c2c"
        );
        assert_eq!(redact("postgres://c2c@db/c2c"), "postgres://c2c@db/c2c");
    }
}
