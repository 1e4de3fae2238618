{{/* Names and labels, Bitnami-style. */}}
{{- define "candela.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "candela.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "candela.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "candela.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "candela.selectorLabels" -}}
app.kubernetes.io/name: {{ include "candela.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "candela.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "candela.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "candela.image" -}}
{{- if .Values.gpu.enabled -}}
{{- printf "%s:%s" .Values.image.gpuRepository (default (printf "%s-gpu" .Chart.AppVersion) .Values.image.gpuTag) -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "candela.secretName" -}}
{{- default (include "candela.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "candela.redisName" -}}
{{- printf "%s-redis" (include "candela.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Redis URL the pods get, or "" (everything in memory, one replica only). */}}
{{- define "candela.redisUrl" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://%s:6379" (include "candela.redisName" .) -}}
{{- else -}}
{{- .Values.redis.externalUrl -}}
{{- end -}}
{{- end -}}

{{/* Refuses values that would break several replicas or graceful shutdown. */}}
{{- define "candela.validate" -}}
{{- $replicas := int .Values.replicaCount -}}
{{- $many := or .Values.autoscaling.enabled (gt $replicas 1) -}}
{{- if and .Values.redis.enabled .Values.redis.externalUrl -}}
{{- fail "set either redis.enabled or redis.externalUrl, not both" -}}
{{- end -}}
{{- if and $many (not (or .Values.redis.enabled .Values.redis.externalUrl .Values.existingSecret)) -}}
{{- fail "several replicas (replicaCount > 1 or autoscaling) share cache, limits, budget and keys through Redis: set redis.enabled=true or redis.externalUrl" -}}
{{- end -}}
{{- if and $many .Values.models.persistence.enabled (not .Values.models.persistence.existingClaim) (eq .Values.models.persistence.accessMode "ReadWriteOnce") -}}
{{- fail "several replicas cannot share a ReadWriteOnce models volume: set models.persistence.accessMode=ReadWriteMany, an existingClaim, or models.persistence.enabled=false (emptyDir per pod)" -}}
{{- end -}}
{{- if le (int .Values.terminationGracePeriodSeconds) (add .Values.shutdownGraceSeconds .Values.preStopSleepSeconds | int) -}}
{{- fail "terminationGracePeriodSeconds must exceed preStopSleepSeconds + shutdownGraceSeconds, or in-flight requests are killed" -}}
{{- end -}}
{{- if and .Values.redis.externalUrl (not (regexMatch "^rediss?://" .Values.redis.externalUrl)) -}}
{{- fail "redis.externalUrl must be a redis:// or rediss:// URL" -}}
{{- end -}}
{{- end -}}
