policy "x" {
  network "n" {
    endpoint {
      host = "api.example.com"
      allow {
        methods = ["GET"]
      }
    }
  }
}

sandbox "s" {
  policy = policy.x
}
