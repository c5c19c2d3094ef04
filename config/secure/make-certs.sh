#!/usr/bin/env bash
# Makes what a secure shardmeta deployment needs, with openssl, into OUT_DIR:
#   ca.pem, ca.key          a CA of its own (keep ca.key offline once the certificates are made)
#   server.pem, server.key  for the meta nodes and etcd: valid for localhost, 127.0.0.1 and every
#                           HOST given (an IP address or a DNS name); usable as a client
#                           certificate too, which is how a meta node proves itself to its peers
#                           and to etcd under mutual TLS
#   client.pem, client.key  for data nodes and metactl, under mutual TLS
#   admin.token, node.token two random bearer tokens (meta's [auth])
# Usage: make-certs.sh OUT_DIR [HOST ...]. Files that exist are left alone, so running it again
# adds nothing and changes nothing.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUT_DIR [HOST ...]" >&2; exit 2; }
out=$1
shift
command -v openssl >/dev/null || { echo "$0: openssl is not installed (Debian package openssl)" >&2; exit 1; }
mkdir -p "$out"
cd "$out"
umask 077

sans="DNS:localhost,IP:127.0.0.1"
for host in "$@"; do
  if [[ $host =~ ^[0-9.]+$ || $host == *:* ]]; then sans="$sans,IP:$host"; else sans="$sans,DNS:$host"; fi
done

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f ca.pem ]; then
  key ca.key
  openssl req -x509 -new -key ca.key -out ca.pem -days 3650 -subj "/CN=shardmeta CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
fi

# leaf NAME CN USAGE [SANS]
leaf() {
  local name=$1 cn=$2 usage=$3 san=${4:-}
  [ -f "$name.pem" ] && return
  key "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$usage"
    [ -n "$san" ] && echo "subjectAltName=$san"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 825 -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

leaf server "shardmeta server" serverAuth,clientAuth "$sans"
leaf client "shardmeta client" clientAuth

for token in admin node; do
  [ -f "$token.token" ] || openssl rand -hex 32 > "$token.token"
done
chmod 644 ca.pem server.pem client.pem
echo "made in $out: ca.pem, server.pem/.key (for $sans), client.pem/.key, admin.token, node.token"
