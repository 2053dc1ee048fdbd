# Preset "telegram": Telegram Bot API
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   api.telegram.org
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "telegram" {
  description = "Telegram Bot API"
  network "telegram" {
    endpoint { host = "api.telegram.org" }
  }
}
