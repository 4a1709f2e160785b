{{/*
Names. The full name is capped at 48 characters so that every derived name
(`-webhook`, `-metrics`, `-serving-tls`, ...) stays a valid DNS label.
*/}}
{{- define "stateguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 48 | trimSuffix "-" }}
{{- end }}

{{- define "stateguard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stateguard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stateguard.webhookServiceName" -}}
{{- include "stateguard.fullname" . }}-webhook
{{- end }}

{{- define "stateguard.metricsServiceName" -}}
{{- include "stateguard.fullname" . }}-metrics
{{- end }}

{{/* The Secret holding tls.crt, tls.key and ca.crt, mounted at /certs. */}}
{{- define "stateguard.tlsSecretName" -}}
{{- if .Values.certManager.enabled }}
{{- include "stateguard.fullname" . }}-serving-tls
{{- else }}
{{- include "stateguard.fullname" . }}-tls
{{- end }}
{{- end }}

{{/* The serving Certificate (cert-manager) that the CA bundle is injected from. */}}
{{- define "stateguard.servingCertificateName" -}}
{{- include "stateguard.fullname" . }}-serving
{{- end }}

{{/* In-cluster DNS names of the webhook Service, as a JSON list. */}}
{{- define "stateguard.webhookDNSNames" -}}
{{- $svc := include "stateguard.webhookServiceName" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
The container's ports: admission reviews (HTTPS), /metrics, and the probes
(/healthz, /readyz). The Deployment's flags and container ports and the
NetworkPolicy take them from here.
*/}}
{{- define "stateguard.webhookPort" -}}9443{{- end }}
{{- define "stateguard.metricsPort" -}}8080{{- end }}
{{- define "stateguard.healthPort" -}}8081{{- end }}

{{/*
The peers of networkPolicy.<key> as a YAML list ("" when there are none);
takes (list $ key). The schema checks each peer's fields; an ipBlock with a
selector beside it, which the API server refuses, is named here.
*/}}
{{- define "stateguard.networkPolicyPeers" -}}
{{- $root := index . 0 }}
{{- $key := index . 1 }}
{{- $peers := index $root.Values.networkPolicy $key | default list }}
{{- range $i, $peer := $peers }}
{{- if and (hasKey $peer "ipBlock") (gt (len $peer) 1) }}
{{- fail (printf "networkPolicy.%s[%d]: an ipBlock cannot be combined with %s in one peer; make them separate peers" $key $i (without (keys $peer | sortAlpha) "ipBlock" | join " or ")) }}
{{- end }}
{{- end }}
{{- with $peers }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{- define "stateguard.labels" -}}
helm.sh/chart: {{ include "stateguard.chart" . }}
{{ include "stateguard.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stateguard
{{- end }}

{{- define "stateguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stateguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* Labels of the helm test objects: not selected by the webhook's Services. */}}
{{- define "stateguard.testLabels" -}}
helm.sh/chart: {{ include "stateguard.chart" . }}
app.kubernetes.io/name: {{ include "stateguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stateguard
{{- end }}

{{- define "stateguard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
The exempt namespaces, as a JSON list: the config's (the PolicyConfig default
when the key is absent) plus the release namespace. The ConfigMap's
PolicyConfig and the webhooks' namespaceSelector both use this one list, so
the API server never calls the webhook for a namespace the webhook exempts,
and never for the namespace the webhook itself runs in.
*/}}
{{- define "stateguard.exemptNamespaces" -}}
{{- $cfg := .Values.config | default dict }}
{{- $list := list "kube-system" "kube-public" "kube-node-lease" }}
{{- if hasKey $cfg "exemptNamespaces" }}
{{- $list = $cfg.exemptNamespaces | default list }}
{{- end }}
{{- append $list .Release.Namespace | uniq | toJson }}
{{- end }}

{{/* The PolicyConfig document, as YAML. */}}
{{- define "stateguard.policyConfig" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $_ := set $cfg "exemptNamespaces" (include "stateguard.exemptNamespaces" . | fromJsonArray) -}}
apiVersion: stateguard.dev/v1alpha1
kind: PolicyConfig
{{ toYaml $cfg }}
{{- end }}

{{/* The mode the config gives a policy (its own, else defaultMode, else enforce). */}}
{{- define "stateguard.policyMode" -}}
{{- $root := index . 0 }}
{{- $id := index . 1 }}
{{- $cfg := $root.Values.config | default dict }}
{{- $policies := $cfg.policies | default dict }}
{{- $policy := index $policies $id | default dict }}
{{- $policy.mode | default $cfg.defaultMode | default "enforce" }}
{{- end }}

{{/*
--shutdown-grace, in seconds: what is left of the termination grace period
after the shutdown delay, minus 2s of margin for the process to exit.
*/}}
{{- define "stateguard.shutdownGraceSeconds" -}}
{{- $delay := .Values.shutdownDelaySeconds | int }}
{{- $grace := sub (sub (.Values.terminationGracePeriodSeconds | int) $delay) 2 }}
{{- if lt $grace (.Values.webhook.timeoutSeconds | int) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) leaves %vs to finish in-flight reviews after the %vs shutdown delay and 2s of margin; it must leave at least webhook.timeoutSeconds (%v): raise terminationGracePeriodSeconds to %v or more" .Values.terminationGracePeriodSeconds $grace $delay .Values.webhook.timeoutSeconds (add .Values.webhook.timeoutSeconds $delay 2)) }}
{{- end }}
{{- $grace }}
{{- end }}

{{/*
TLS material when cert-manager is not used: the existing Secret's (so that
`helm upgrade` keeps the certificate and the webhooks' caBundle stable), else
a CA and a serving certificate generated now. Computed once per render and
cached on the root context, so the Secret and the webhook configurations get
the same CA. Returns a dict with base64 values crt, key, ca.
*/}}
{{- define "stateguard.selfSignedTLS" -}}
{{- if not (hasKey . "stateguardSelfSignedTLS") }}
{{- $secretName := include "stateguard.tlsSecretName" . }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace $secretName }}
{{- $data := dict }}
{{- if $existing }}
{{- $data = $existing.data | default dict }}
{{- end }}
{{- $tls := dict }}
{{- if and (index $data "tls.crt") (index $data "tls.key") (index $data "ca.crt") }}
{{- $tls = dict "crt" (index $data "tls.crt") "key" (index $data "tls.key") "ca" (index $data "ca.crt") }}
{{- else }}
{{- $days := .Values.selfSignedCert.validityDays | int }}
{{- $ca := genCA (printf "%s-ca" (include "stateguard.fullname" .)) $days }}
{{- $dnsNames := include "stateguard.webhookDNSNames" . | fromJsonArray }}
{{- $cert := genSignedCert (index $dnsNames 2) nil $dnsNames $days $ca }}
{{- $tls = dict "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc) "ca" ($ca.Cert | b64enc) }}
{{- end }}
{{- $_ := set . "stateguardSelfSignedTLS" $tls }}
{{- end }}
{{- toJson (get . "stateguardSelfSignedTLS") }}
{{- end }}

{{/* Annotations that make cert-manager's cainjector fill in the caBundle. */}}
{{- define "stateguard.webhookAnnotations" -}}
{{- if .Values.certManager.enabled -}}
cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "stateguard.servingCertificateName" .) }}
{{- end }}
{{- end }}

{{/* clientConfig of one webhook; takes (list $ path). */}}
{{- define "stateguard.clientConfig" -}}
{{- $root := index . 0 -}}
service:
  name: {{ include "stateguard.webhookServiceName" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: {{ index . 1 }}
  port: 443
{{- if not $root.Values.certManager.enabled }}
caBundle: {{ (include "stateguard.selfSignedTLS" $root | fromJson).ca }}
{{- end }}
{{- end }}

{{/* The settings every webhook shares. */}}
{{- define "stateguard.webhookCommon" -}}
admissionReviewVersions: ["v1"]
sideEffects: None
matchPolicy: Equivalent
failurePolicy: {{ .Values.webhook.failurePolicy }}
timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "stateguard.exemptNamespaces" . }}
{{- end }}

{{/* Pod and container security contexts: the restricted Pod Security profile. */}}
{{- define "stateguard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "stateguard.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Annotations of a helm test object created before the test pod. */}}
{{- define "stateguard.testHookAnnotations" -}}
helm.sh/hook: test
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/*
Whether `helm test` can expect stateguard to turn down a StatefulSet without
a headless Service in tests.namespace: the config's headless-service mode is
enforce (denied) or warn (a warning, which the test treats as an error), and
the namespace is not exempt. Renders "true" or "".
*/}}
{{- define "stateguard.testExpectsDenial" -}}
{{- $mode := include "stateguard.policyMode" (list . "headless-service") }}
{{- $exempt := include "stateguard.exemptNamespaces" . | fromJsonArray }}
{{- if and (has $mode (list "enforce" "warn")) (not (has .Values.tests.namespace $exempt)) }}true{{ end }}
{{- end }}

{{/* The StatefulSet the test dry-runs; takes (list $ serviceName). */}}
{{- define "stateguard.testStatefulSet" -}}
{{- $root := index . 0 }}
{{- $cfg := $root.Values.config | default dict }}
{{- $snap := index ($cfg.policies | default dict) "snapshot-schedule" | default dict }}
{{- $labels := dict "app.kubernetes.io/name" "stateguard-test" "app.kubernetes.io/instance" $root.Release.Name -}}
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ include "stateguard.fullname" $root }}-test
  namespace: {{ $root.Values.tests.namespace }}
  labels:
    {{- toYaml $labels | nindent 4 }}
    {{ $snap.labelKey | default "stateguard.dev/snapshot-schedule" }}: {{ first ($snap.schedules | default (list "hourly")) | quote }}
spec:
  replicas: 1
  serviceName: {{ index . 1 }}
  selector:
    matchLabels:
      {{- toYaml $labels | nindent 6 }}
  template:
    metadata:
      labels:
        {{- toYaml $labels | nindent 8 }}
    spec:
      automountServiceAccountToken: false
      securityContext:
        {{- include "stateguard.podSecurityContext" $root | nindent 8 }}
      containers:
        - name: pause
          image: registry.k8s.io/pause:3.10
          resources:
            requests: {cpu: 1m, memory: 8Mi}
            limits: {memory: 8Mi}
          securityContext:
            {{- include "stateguard.containerSecurityContext" $root | nindent 12 }}
{{- end }}

{{/* The test pods' container settings (kubectl, no shell). */}}
{{- define "stateguard.testContainer" -}}
image: {{ .Values.tests.kubectlImage }}
imagePullPolicy: IfNotPresent
env:
  - name: HOME
    value: /tmp
resources:
  requests: {cpu: 10m, memory: 32Mi}
  limits: {memory: 128Mi}
securityContext:
  {{- include "stateguard.containerSecurityContext" . | nindent 2 }}
volumeMounts:
  - name: manifests
    mountPath: /manifests
    readOnly: true
  - name: tmp
    mountPath: /tmp
{{- end }}
