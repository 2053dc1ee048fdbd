# Preset "slack": Slack Web API, Socket Mode and file downloads
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   slack.com
#   *.slack.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "slack" {
  description = "Slack Web API, Socket Mode and file downloads"
  network "slack" {
    endpoint { host = "slack.com" }
    endpoint { host = "*.slack.com" }
  }
}
