# Preset "anthropic": Anthropic API
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   api.anthropic.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "anthropic" {
  description = "Anthropic API"
  network "anthropic" {
    endpoint { host = "api.anthropic.com" }
  }
}
