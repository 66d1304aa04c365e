//! Provider credentials. Secrets are stored sealed (see `domain::crypto`); this module never
//! sees plaintext except in [`reencrypt_credentials`], which opens and reseals in memory.

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::{Page, entities::provider_credential as cred};
use salestrainer_runtime::names;

use crate::domain::crypto;

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
) -> Result<Option<cred::Model>, DbErr> {
    cred::Entity::find_by_id((org.to_owned(), id.to_owned()))
        .one(conn)
        .await
}

/// The earliest-created credential of `kind`.
pub async fn first_of_kind<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    kind: &str,
) -> Result<Option<cred::Model>, DbErr> {
    cred::Entity::find()
        .filter(cred::Column::OrganizationId.eq(org))
        .filter(cred::Column::Kind.eq(kind))
        .order_by_asc(cred::Column::CreateUs)
        .order_by_asc(cred::Column::Id)
        .one(conn)
        .await
}

pub async fn list<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Page<cred::Model>, DbErr> {
    let mut q = cred::Entity::find().filter(cred::Column::OrganizationId.eq(org));
    if let Some(after) = after {
        q = q.filter(cred::Column::Id.gt(after));
    }
    let rows = q
        .order_by_asc(cred::Column::Id)
        .limit(limit + 1)
        .all(conn)
        .await?;
    Ok(Page::from_rows(rows, limit, |r| r.id.clone()))
}

pub async fn insert<C: ConnectionTrait>(conn: &C, row: cred::Model) -> Result<(), DbErr> {
    cred::ActiveModel::from(row)
        .reset_all()
        .insert(conn)
        .await?;
    Ok(())
}

pub fn key(org: &str, id: &str, etag: &str) -> Condition {
    Condition::all()
        .add(cred::Column::OrganizationId.eq(org))
        .add(cred::Column::Id.eq(id))
        .add(cred::Column::Etag.eq(etag))
}

pub async fn delete<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
    etag: &str,
) -> Result<bool, DbErr> {
    let res = cred::Entity::delete_many()
        .filter(key(org, id, etag))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

#[derive(Debug, thiserror::Error)]
pub enum ReencryptError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error("credential {name}: {source}")]
    Crypto {
        name: String,
        source: crypto::CryptoError,
    },
}

/// Re-seals every stored secret under `new_kek`, in one transaction: either every credential
/// moves to the new key or none does. Rows already under `new_kek` are skipped, so a rerun after
/// a crash is harmless. Returns how many credentials were re-sealed.
pub async fn reencrypt_credentials(
    db: &DatabaseConnection,
    old_kek: &crypto::Kek,
    new_kek: &crypto::Kek,
) -> Result<u64, ReencryptError> {
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    let rows = cred::Entity::find().all(&txn).await?;
    let mut count = 0;
    for row in rows {
        if row.key_id == new_kek.id() {
            continue;
        }
        let name = names::child_name(&row.organization_id, "credentials", &row.id);
        if row.key_id != old_kek.id() {
            return Err(ReencryptError::Crypto {
                name,
                source: crypto::CryptoError::WrongKey {
                    found: row.key_id.clone(),
                    expected: old_kek.id().to_owned(),
                },
            });
        }
        let reseal = |sealed: &[u8], field: &str| -> Result<Vec<u8>, ReencryptError> {
            let aad = crypto::aad(&name, field);
            let plain = old_kek
                .open(sealed, &aad)
                .map_err(|source| ReencryptError::Crypto {
                    name: name.clone(),
                    source,
                })?;
            Ok(new_kek.seal(&plain, &aad))
        };
        let mut updated = row.clone();
        // An empty ciphertext is a cleared key (the base URL changed): nothing to reseal.
        if !row.api_key_ciphertext.is_empty() {
            updated.api_key_ciphertext = reseal(&row.api_key_ciphertext, "api_key")?;
        }
        updated.webhook_secret_ciphertext = match &row.webhook_secret_ciphertext {
            Some(s) => Some(reseal(s, "webhook_secret")?),
            None => None,
        };
        updated.key_id = new_kek.id().to_owned();
        let cond = key(&row.organization_id, &row.id, &row.etag);
        super::compare_and_swap(&txn, cred::ActiveModel::from(updated), cond).await?;
        count += 1;
    }
    txn.commit().await?;
    Ok(count)
}
