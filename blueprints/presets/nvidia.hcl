# Preset "nvidia": NVIDIA hosted endpoints (build.nvidia.com: NIM API, NVCF)
#
# Allows HTTPS (port 443, TLS passed through uninspected, any method and path)
# to exactly these hosts and nothing else:
#   integrate.api.nvidia.com
#   ai.api.nvidia.com
#   api.nvcf.nvidia.com
# "*." patterns match one or more labels below the domain, never the domain itself.
preset "nvidia" {
  description = "NVIDIA hosted endpoints (build.nvidia.com: NIM API, NVCF)"
  network "nvidia" {
    endpoint { host = "integrate.api.nvidia.com" }
    endpoint { host = "ai.api.nvidia.com" }
    endpoint { host = "api.nvcf.nvidia.com" }
  }
}
