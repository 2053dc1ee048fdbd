policy "x" {
  filesystem {
    read_only  = ["usr", "/etc"]
    read_write = ["/etc/"]
    writable   = ["/tmp"]
  }
}

sandbox "s" {
  policy = policy.x
}
