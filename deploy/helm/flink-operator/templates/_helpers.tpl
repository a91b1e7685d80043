{{/* The release's objects are named after it (the chart's name when the release has it). */}}
{{- define "flink-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "flink-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flink-operator.labels" -}}
{{ include "flink-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "flink-operator.serviceAccountName" -}}
{{- .Values.operatorServiceAccount.name | default (include "flink-operator.fullname" .) -}}
{{- end -}}

{{/* Where the Flink ServiceAccount and its Role go: each watched namespace, or the release's. */}}
{{- define "flink-operator.jobNamespaces" -}}
{{- if .Values.watchNamespaces -}}
{{- toJson .Values.watchNamespaces -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{- define "flink-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "flink-operator.fullname" .) -}}
{{- end -}}

{{- define "flink-operator.webhookSecretName" -}}
{{- if .Values.webhook.certManager.enabled -}}
{{- printf "%s-webhook-cert" (include "flink-operator.fullname" .) -}}
{{- else -}}
{{- required "webhook.tls.secretName is required when webhook.certManager.enabled is false" .Values.webhook.tls.secretName -}}
{{- end -}}
{{- end -}}

{{- define "flink-operator.configPath" -}}/opt/flink-operator/conf/config.yaml{{- end -}}
{{- define "flink-operator.webhookTlsDir" -}}/opt/flink-operator/webhook-tls{{- end -}}
{{- define "flink-operator.artifactsDir" -}}/opt/flink/artifacts{{- end -}}

{{/*
The operator configuration: operatorConfiguration, with the keys the chart owns set from the
other values.
*/}}
{{- define "flink-operator.config" -}}
{{- $config := deepCopy (.Values.operatorConfiguration | default dict) -}}
{{- if .Values.watchNamespaces -}}
{{- $_ := set $config "kubernetes.operator.watched.namespaces" (join "," .Values.watchNamespaces) -}}
{{- end -}}
{{- $_ := set $config "kubernetes.operator.leader-election.enabled" .Values.leaderElection.enabled -}}
{{- if .Values.leaderElection.enabled -}}
{{- $_ := set $config "kubernetes.operator.leader-election.lease-name" (required "leaderElection.leaseName is required" .Values.leaderElection.leaseName) -}}
{{- end -}}
{{- $_ := set $config "kubernetes.operator.user.artifacts.base.dir" (include "flink-operator.artifactsDir" .) -}}
{{- toYaml $config -}}
{{- end -}}

{{/*
What the operator does with the Kubernetes API in the namespaces it watches: exactly the calls
of src/adapters/kube.rs and the watches of src/operator.rs (tests/helm_chart.rs holds the
table, call by call).
*/}}
{{- define "flink-operator.operatorRules" -}}
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments, flinksessionjobs]
  verbs: [get, list, watch, patch]
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments/status, flinksessionjobs/status]
  verbs: [update]
- apiGroups: [flink.apache.org]
  resources: [flinkdeployments/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [create, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/*
What Flink's JobManager does in native Kubernetes mode (upstream's chart grants it the same
resources): TaskManager pods, HA and leader ConfigMaps, its own Deployment (owner of the
TaskManager pods, deleted when an application finishes).
*/}}
{{- define "flink-operator.jobRules" -}}
- apiGroups: [""]
  resources: [pods, configmaps]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
- apiGroups: [apps]
  resources: [deployments, deployments/finalizers]
  verbs: [get, list, watch, create, update, patch, delete, deletecollection]
{{- end -}}
