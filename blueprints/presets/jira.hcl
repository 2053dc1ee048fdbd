# Preset "jira": Jira Cloud (Atlassian) REST API and OAuth
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   *.atlassian.net
#   api.atlassian.com
#   auth.atlassian.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "jira" {
  description = "Jira Cloud (Atlassian) REST API and OAuth"
  network "jira" {
    endpoint { host = "*.atlassian.net" }
    endpoint { host = "api.atlassian.com" }
    endpoint { host = "auth.atlassian.com" }
  }
}
