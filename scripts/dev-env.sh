# Source this while changing SQL: the sqlx macros then check queries against a
# live, migrated database and write the offline data into .sqlx/ as they go.
# (Plain builds use the committed .sqlx/ and need no database.)
export SQLX_OFFLINE=false
export DATABASE_URL="${DEV_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/videofeed_dev}"
export SQLX_OFFLINE_DIR="$(git -C "$(dirname "${BASH_SOURCE[0]}")" rev-parse --show-toplevel)/.sqlx"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
mkdir -p "$SQLX_OFFLINE_DIR"
