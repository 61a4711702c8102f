#!/bin/sh
# A Discord stand-in on the emulated Pi (busybox httpd runs it as /cgi-bin/api for every
# request under it): each webhook answers 404 Unknown Webhook, as after someone deleted it.
echo "Status: 404 Not Found"
echo "Content-Type: application/json"
echo ""
echo '{"message": "Unknown Webhook", "code": 10015}'
