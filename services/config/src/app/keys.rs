//! Where the key-encryption key (KEK) for provider credentials comes from.
//!
//! `[config] credential_kek` (`SALESTRAINER_CONFIG__CREDENTIAL_KEK`: standard base64 of 32
//! random bytes, e.g. `openssl rand -base64 32`) in production; otherwise, for embedded mode, a
//! key generated into `data_dir/credential-kek.key` on first start and reused after. Losing the
//! key loses the stored credentials; rotate with `store::reencrypt_credentials`.

use std::path::Path;

use anyhow::Context;
use salestrainer_runtime::Settings;

use crate::domain::crypto::Kek;

use super::settings::ConfigSettings;

/// The environment variable that sets `[config] credential_kek`.
pub const KEK_ENV: &str = "SALESTRAINER_CONFIG__CREDENTIAL_KEK";
pub const KEK_FILE: &str = "credential-kek.key";

pub fn load_kek(settings: &Settings, config: &ConfigSettings) -> anyhow::Result<Kek> {
    let value = config.credential_kek.trim();
    if value.is_empty() {
        kek_from_file(&settings.data_dir)
    } else {
        Kek::from_base64(value).with_context(|| format!("credential_kek ({KEK_ENV}) is invalid"))
    }
}

/// Reads `dir/credential-kek.key`, creating it (owner-readable only) if missing.
pub fn kek_from_file(dir: &Path) -> anyhow::Result<Kek> {
    let path = dir.join(KEK_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Kek::from_base64(&text).with_context(|| format!("{} is invalid", path.display()));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let kek = Kek::generate();
    match salestrainer_runtime::crypto::write_private_file(&path, kek.to_base64().as_bytes()) {
        Ok(()) => {
            tracing::info!(path = %path.display(), key_id = kek.id(), "generated a credential key-encryption key");
            Ok(kek)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let text = std::fs::read_to_string(&path)?;
            Kek::from_base64(&text).with_context(|| format!("{} is invalid", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot write {}", path.display())),
    }
}
