{{/* Names and labels. */}}
{{- define "goresolve.fullname" -}}
{{- if contains "." .Release.Name -}}
{{- fail (printf "release name %q has a dot: the chart's Services and Jobs are named after it, and their names are DNS labels (letters, digits and '-' only). Choose a release name without dots" .Release.Name) -}}
{{- end -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
A Service's name (list: ctx, suffix): "<fullname>-<suffix>", which must be a DNS label (63 characters at
most). The fullname is cut at 50, and the longest suffix ("go-test-runner", topology services) would take
it to 65: rendering fails rather than the API server (422), and names are never cut differently from
what an installed release already has.
*/}}
{{- define "goresolve.serviceName" -}}
{{- $ctx := index . 0 -}}{{- $suffix := index . 1 -}}
{{- $full := include "goresolve.fullname" $ctx -}}
{{- $name := printf "%s-%s" $full $suffix -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "release name %q is too long: the Service %q would be %d characters, over the 63 of a DNS label. Choose a release name that makes the chart's full name (the release name, followed by \"-goresolve\" unless it contains \"goresolve\") at most %d characters" $ctx.Release.Name $name (len $name) (sub 62 (len $suffix))) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "goresolve.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "goresolve.labels" -}}
{{ include "goresolve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The four servers: values key, port, image key, env prefix, credential (if any). */}}
{{- define "goresolve.servers" -}}
jira-read: {key: jiraRead, prefix: GORESOLVE_JIRA_READ_, secretSetting: API_TOKEN, secretValue: apiToken}
code-search: {key: codeSearch, prefix: GORESOLVE_CODE_SEARCH_}
go-test-runner: {key: goTestRunner, prefix: GORESOLVE_GO_TEST_RUNNER_}
github-pr: {key: githubPr, prefix: GORESOLVE_GITHUB_PR_, secretSetting: TOKEN, secretValue: token}
{{- end -}}

{{/* image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "goresolve.image" -}}
{{- if eq .tag "latest" -}}
{{- fail (printf "image %s: the tag \"latest\" is refused (it changes under a running release, and the dispatcher's admission policy pins each image): set a version tag, or a digest" .repository) -}}
{{- end -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end -}}

{{/* The container security context of every container (Pod Security "restricted"). */}}
{{- define "goresolve.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  privileged: false
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "goresolve.podSecurityContext" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "goresolve.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Secret names: the operator's existingSecret, else the chart's own. */}}
{{- define "goresolve.secretName" -}}
{{- $ctx := index . 0 -}}{{- $creds := index . 1 -}}{{- $suffix := index . 2 -}}
{{- if $creds.existingSecret -}}{{ $creds.existingSecret }}{{- else -}}{{ include "goresolve.fullname" $ctx }}-{{ $suffix }}{{- end -}}
{{- end -}}

{{- define "goresolve.policiesConfigMap" -}}
{{- if .Values.policies.existingConfigMap -}}{{ .Values.policies.existingConfigMap }}{{- else -}}{{ include "goresolve.fullname" . }}-policies{{- end -}}
{{- end -}}

{{- define "goresolve.redisSecretName" -}}
{{- if .Values.queue.redis.existingSecret -}}{{ .Values.queue.redis.existingSecret }}{{- else -}}{{ include "goresolve.fullname" . }}-redis-url{{- end -}}
{{- end -}}

{{/* The bundled Redis's password: the operator's Secret, else the one the chart generates. */}}
{{- define "goresolve.redisAuthSecretName" -}}
{{- if .Values.queue.redis.auth.existingSecret -}}{{ .Values.queue.redis.auth.existingSecret }}{{- else -}}{{ include "goresolve.fullname" . }}-redis-auth{{- end -}}
{{- end -}}

{{- define "goresolve.redisAuthSecretKey" -}}
{{- if .Values.queue.redis.auth.existingSecret -}}{{ .Values.queue.redis.auth.existingSecretKey }}{{- else -}}password{{- end -}}
{{- end -}}

{{/*
Environment that points a component at the queue. The bundled Redis's URL carries its password,
which Kubernetes substitutes from the Secret when the container starts (never in the pod spec).
*/}}
{{- define "goresolve.queueEnv" -}}
- name: GORESOLVE_QUEUE_BACKEND
  value: redis
- name: GORESOLVE_QUEUE_REDIS_MEMORY_LIMIT
  value: {{ .Values.queue.redis.memoryLimit | quote }}
{{- if .Values.queue.redis.bundled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "goresolve.redisAuthSecretName" . }}
      key: {{ include "goresolve.redisAuthSecretKey" . }}
- name: GORESOLVE_QUEUE_REDIS_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s-redis:6379/0" (include "goresolve.fullname" .) | quote }}
{{- else }}
- name: GORESOLVE_QUEUE_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "goresolve.redisSecretName" . }}
      key: {{ .Values.queue.redis.existingSecretKey }}
{{- end }}
{{- end -}}

{{/* Policies volume (read-only) and scratch volumes shared by every pod. */}}
{{- define "goresolve.policiesVolume" -}}
- name: policies
  configMap:
    name: {{ include "goresolve.policiesConfigMap" . }}
{{- end -}}

{{/*
A pod-template annotation that changes with the chart's policy files, so `helm upgrade` with an edited
policy restarts the long-running pods that read them (servers read policies once, when they start). With
policies.existingConfigMap the chart does not see the files: restart the pods after editing that ConfigMap.
*/}}
{{- define "goresolve.policiesChecksum" -}}
checksum/policies: {{ include (print .Template.BasePath "/policies.yaml") . | sha256sum }}
{{- end -}}

{{- define "goresolve.tokenAudience" -}}goresolve:{{ . }}{{- end -}}

{{/*
The agent's policy identity: the `sub` of its tokens. A projected ServiceAccount token names the
agent's ServiceAccount; a minted one names auth.sharedKey.subject.
*/}}
{{- define "goresolve.agentIdentity" -}}
{{- if eq .Values.auth.mode "projected" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "goresolve.fullname" . }}-agent
{{- else -}}
{{ .Values.auth.sharedKey.subject }}
{{- end -}}
{{- end -}}

{{/*
Auth settings of one server (dict: ctx, name, prefix). projected: the server verifies Kubernetes
ServiceAccount tokens against the issuer's JWKS; sharedKey: HS256 with the key from its Secret file.
*/}}
{{- define "goresolve.serverAuthEnv" -}}
{{- $v := .ctx.Values -}}
{{- if eq $v.auth.mode "projected" }}
- name: {{ .prefix }}OIDC_ISSUER
  value: {{ $v.auth.issuerUrl | quote }}
- name: {{ .prefix }}OIDC_JWKS_URL
  value: {{ default (printf "%s/openid/v1/jwks" (trimSuffix "/" $v.auth.issuerUrl)) $v.auth.jwksUrl | quote }}
- name: {{ .prefix }}OIDC_AUDIENCE
  value: {{ include "goresolve.tokenAudience" .name | quote }}
{{- if $v.auth.issuerCaConfigMap }}
- name: {{ .prefix }}OIDC_CA_FILE
  value: /etc/goresolve/oidc-ca/ca.crt
{{- end }}
{{- end }}
{{- end -}}

{{/* The shared-key secret name (sharedKey mode). */}}
{{- define "goresolve.sharedKeySecret" -}}
{{- include "goresolve.secretName" (list . .Values.auth.sharedKey "token-key") -}}
{{- end -}}

{{/* One credential line of NOTES.txt. list: ctx, credentials, key, inline value, who, suffix. */}}
{{- define "goresolve.notesSecret" -}}
{{- $creds := index . 1 }}{{ $key := index . 2 }}{{ $inline := index . 3 }}{{ $who := index . 4 }}
{{- if $creds.existingSecret }}
     - {{ $who }}: Secret "{{ $creds.existingSecret }}", key "{{ $key }}" (yours; make sure it exists)
{{- else if $inline }}
     - {{ $who }}: Secret "{{ include "goresolve.fullname" (index . 0) }}-{{ index . 5 }}" (created from values; prefer existingSecret)
{{- else }}
     - {{ $who }}: NOT SET. Create a Secret and set its existingSecret (see docs/operations.md)
{{- end }}
{{- end -}}

{{/*
The webhook sources as NOTES.txt reports them (JSON: source -> state). "secret": listed, with an inline
secret or a key expected in existingSecret; "unset": listed, with no secret anywhere the chart can see;
"off": not in webhooks.sources (not served, its secret never mounted).
*/}}
{{- define "goresolve.webhookSources" -}}
{{- $c := .Values.webhooks.credentials -}}
{{- $states := dict -}}
{{- range $source := list "github" "jira" -}}
{{- if not (has $source $.Values.webhooks.sources) -}}
{{- $_ := set $states $source "off" -}}
{{- else if or $c.existingSecret (get $c (printf "%sSecret" $source)) -}}
{{- $_ := set $states $source "secret" -}}
{{- else -}}
{{- $_ := set $states $source "unset" -}}
{{- end -}}
{{- end -}}
{{- toJson $states -}}
{{- end -}}

{{/*
The embedder settings, given to code-search and to the indexer from this one definition: an index is
searchable only with the embedder (and model, and size) that wrote it.
*/}}
{{- define "goresolve.embedderEnv" -}}
- name: GORESOLVE_CODE_SEARCH_EMBEDDER
  value: {{ .Values.codeSearch.embedder | quote }}
{{- if eq .Values.codeSearch.embedder "openai" }}
{{- with .Values.codeSearch.openai }}
- name: GORESOLVE_CODE_SEARCH_OPENAI_BASE_URL
  value: {{ .baseUrl | quote }}
- name: GORESOLVE_CODE_SEARCH_OPENAI_MODEL
  value: {{ .model | quote }}
- name: GORESOLVE_CODE_SEARCH_OPENAI_DIM
  value: {{ .dim | int | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The embeddings key (embedder openai) as a projected Secret source: the file code-search's settings read. */}}
{{- define "goresolve.embeddingsKeySource" -}}
- secret:
    name: {{ include "goresolve.secretName" (list . .Values.codeSearch.openai.credentials "embeddings") }}
    items:
      - {key: {{ .Values.codeSearch.openai.credentials.existingSecretKey }}, path: GORESOLVE_CODE_SEARCH_OPENAI_API_KEY}
{{- end -}}

{{/*
"true" when networkPolicy.egress.kubeApi is narrowed to the API server: each CIDR a single address or a
small block (IPv4 /24 or longer, IPv6 /120 or longer); else empty (the default private ranges).
*/}}
{{- define "goresolve.kubeApiNarrowed" -}}
{{- $narrow := true -}}
{{- range .Values.networkPolicy.egress.kubeApi.cidrs -}}
{{- $parts := splitList "/" . -}}
{{- $bits := int (last $parts) -}}
{{- if lt $bits (ternary 120 24 (contains ":" .)) }}{{ $narrow = false }}{{ end -}}
{{- end -}}
{{- if $narrow }}true{{ end -}}
{{- end -}}
