policy "x" {
  unknown_hosts = "allow"
}

sandbox "s" {
  policy = policy.x
}
