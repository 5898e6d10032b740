//! The platform's Secrets: generated once by the operator and never overwritten (the
//! apply stage creates them only when absent), so keys and passwords survive every
//! reconcile and operator restart. Names are `<platform>-…`.

use crate::owner::{DATABASE_COMPONENT, DATABASE_PORT, Owner};
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;

pub use agora_keys::{RandomError, ed25519_pem, random_hex};

fn secret(owner: &Owner, component: &str, name: String, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: owner.meta(component, name),
        type_: Some("Opaque".to_owned()),
        string_data: Some(data),
        ..Secret::default()
    }
}

/// The managed database's superuser Secret.
pub fn superuser_secret(owner: &Owner) -> Result<Secret, RandomError> {
    Ok(secret(
        owner,
        DATABASE_COMPONENT,
        owner.database_host(),
        BTreeMap::from([("password".to_owned(), random_hex(24)?)]),
    ))
}

/// `<platform>-<service>-database`: a service's database credentials.
/// A service's database credentials: role and database named after the service, a
/// random password, and the `DATABASE_URL` the service reads (on `host`). The
/// `username`/`password` keys are also what CloudNativePG reads for a managed role.
pub fn database_secret(owner: &Owner, service: &str, host: &str) -> Result<Secret, RandomError> {
    let password = random_hex(24)?;
    let url = format!(
        "postgres://{service}:{password}@{host}:{}/{service}",
        DATABASE_PORT
    );
    Ok(secret(
        owner,
        service,
        owner.database_secret_name(service),
        BTreeMap::from([
            ("username".to_owned(), service.to_owned()),
            ("password".to_owned(), password),
            ("database".to_owned(), service.to_owned()),
            ("url".to_owned(), url),
        ]),
    ))
}

/// `<platform>-backup-reader-database`: the backups' read-only role (Managed mode), its
/// password and the host its URLs name.
pub fn reader_secret(owner: &Owner, host: &str) -> Result<Secret, RandomError> {
    Ok(secret(
        owner,
        crate::backup::jobs::COMPONENT,
        crate::backup::jobs::reader_secret_name(owner),
        BTreeMap::from([
            (
                "username".to_owned(),
                crate::database::READER_ROLE.to_owned(),
            ),
            ("password".to_owned(), random_hex(24)?),
            ("host".to_owned(), host.to_owned()),
        ]),
    ))
}

/// The keys Secret of a platform restored from a backup: empty, until the restore Job
/// writes the backup's keys into it (created once, so never overwritten by the
/// operator).
pub fn restore_keys_secret(owner: &Owner) -> Secret {
    let mut secret = secret(owner, "keys", owner.keys_secret_name(), BTreeMap::new());
    secret.metadata.annotations = Some(BTreeMap::from([(
        "agora.dev/keys".to_owned(),
        "restored from a backup".to_owned(),
    )]));
    secret
}

/// The shared keys Secret.
pub fn keys_secret(owner: &Owner) -> Result<Secret, RandomError> {
    Ok(secret(
        owner,
        "keys",
        owner.keys_secret_name(),
        BTreeMap::from([
            ("auth-signing-key".to_owned(), ed25519_pem()?),
            ("internal-token".to_owned(), random_hex(32)?),
            ("share-link-key".to_owned(), random_hex(32)?),
        ]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fixtures::owner;

    #[test]
    fn secrets_are_random_owned_and_named_per_platform() {
        let owner = owner();
        let a = database_secret(&owner, "users", "demo-postgres").unwrap();
        let b = database_secret(&owner, "users", "demo-postgres").unwrap();
        let (a, b) = (a.string_data.unwrap(), b.string_data.unwrap());
        assert_ne!(a["password"], b["password"], "a fresh password each time");
        assert_eq!(a["password"].len(), 48);
        assert_eq!(
            a["url"],
            format!(
                "postgres://users:{}@demo-postgres:5432/users",
                a["password"]
            )
        );
        let keys = keys_secret(&owner).unwrap();
        assert_eq!(keys.metadata.name.as_deref(), Some("demo-keys"));
        assert!(keys.metadata.owner_references.is_some());
        let data = keys.string_data.unwrap();
        assert!(data["auth-signing-key"].starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(data["internal-token"].len(), 64);
        assert_eq!(
            superuser_secret(&owner).unwrap().metadata.name.as_deref(),
            Some("demo-postgres")
        );
    }
}
