{{/*
The chart's short name (app.kubernetes.io/name), at most 63 characters.
*/}}
{{- define "agora-operator.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Prefix of object names: the release name alone when it already contains the chart's
name (a release called "agora-operator" gives "agora-operator", not
"agora-operator-agora-operator"), otherwise "<release>-<name>".
*/}}
{{- define "agora-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "agora-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The helm.sh/chart label: "<chart>-<version>", "+" being invalid in label values.
*/}}
{{- define "agora-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels that select the operator's pods. Never change them: a Deployment's selector is
immutable.
*/}}
{{- define "agora-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agora-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels of every object of the chart.
*/}}
{{- define "agora-operator.labels" -}}
helm.sh/chart: {{ include "agora-operator.chart" . }}
{{ include "agora-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ include "agora-operator.tag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: agora-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The image tag: image.tag, else the chart's appVersion.
*/}}
{{- define "agora-operator.tag" -}}
{{- .Values.image.tag | default .Chart.AppVersion -}}
{{- end -}}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "agora-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "agora-operator.fullname" .) -}}
{{- else -}}
{{- required "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}
