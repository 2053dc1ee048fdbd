# Preset "outlook": Microsoft Graph (Outlook mail, calendar) and Microsoft identity sign-in
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   graph.microsoft.com
#   login.microsoftonline.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "outlook" {
  description = "Microsoft Graph (Outlook mail, calendar) and Microsoft identity sign-in"
  network "outlook" {
    endpoint { host = "graph.microsoft.com" }
    endpoint { host = "login.microsoftonline.com" }
  }
}
