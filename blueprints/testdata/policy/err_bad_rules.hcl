policy "x" {
  network "n" {
    endpoint {
      host    = "api.example.com"
      inspect = true
      allow {
        methods = ["FETCH"]
        paths   = ["repos/**", "/a**b", "/x?"]
        query   = { q = "one" }
      }
    }
  }
}

sandbox "s" {
  policy = policy.x
}
