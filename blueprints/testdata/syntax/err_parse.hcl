policy "p" {
  unknown_hosts = "deny"
