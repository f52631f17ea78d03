#!/bin/sh
# The compose nginx's certificate (docker-compose.prod.yml), run by the image's entrypoint
# from /docker-entrypoint.d/ before nginx starts.
#
# The site reads /etc/nginx/tls/site/{fullchain,privkey}.pem, a link to certbot's lineage for
# DOMAIN in the letsencrypt volume once it exists, and until then to a self-signed
# placeholder: nginx starts before any certificate exists and answers certbot's HTTP
# challenge, which is how the first certificate is obtained. Then a loop checks every
# CHECK_SECONDS whether certbot has issued or renewed the certificate (live/ then points at
# new files in archive/) and, if so, moves the link and reloads nginx, which keeps serving.
set -eu

CHECK_SECONDS=5
live="/etc/letsencrypt/live/${DOMAIN:?set DOMAIN}"
placeholder=/etc/nginx/tls/placeholder
link=/etc/nginx/tls/site

chosen() {
    if [ -s "$live/fullchain.pem" ] && [ -s "$live/privkey.pem" ]; then
        echo "$live"
    else
        echo "$placeholder"
    fi
}

fingerprint() {
    # The files the links lead to, and when they changed.
    directory=$(chosen)
    for file in fullchain.pem privkey.pem; do
        echo "$(readlink -f "$directory/$file") $(stat -L -c %Y "$directory/$file")"
    done
}

if [ ! -s "$placeholder/fullchain.pem" ]; then
    mkdir -p "$placeholder"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$DOMAIN" \
        -addext "subjectAltName=DNS:$DOMAIN" \
        -keyout "$placeholder/privkey.pem" -out "$placeholder/fullchain.pem" 2>/dev/null
fi
ln -sfn "$(chosen)" "$link"
echo "$0: serving $(chosen)/fullchain.pem"

watch_certificate() {
    set +e  # a check that fails (certbot writing at that moment) is retried, never fatal
    seen=$(fingerprint)
    while sleep "$CHECK_SECONDS"; do
        now=$(fingerprint) || continue
        [ "$now" = "$seen" ] && continue
        ln -sfn "$(chosen)" "$link"
        if nginx -t -q && nginx -s reload; then
            echo "$0: certificate changed, nginx reloaded: serving $(chosen)/fullchain.pem"
            seen=$now
        fi
    done
}
watch_certificate &
