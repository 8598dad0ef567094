"""The churn model (Spark ML logistic regression on the risk components) and how scores are evaluated.

Why logistic regression on the components rather than a larger model: churners are few (tens in a
year of an ISV's subscriptions), the components already encode the shape of a fading customer, and a
linear model's weight per component turns directly into drivers an account executive can read. It is
deterministic (L-BFGS on the same rows gives the same weights), and trains in seconds.

Churners are rare, so rows are weighted to balance the classes while fitting (otherwise the fit all but
ignores them). Weighting churners by w multiplies the fitted odds by w, so the intercept is corrected by
-log(w) afterwards (prior correction): `churn_risk` from the model is the estimated probability that the
subscription churns within the horizon, on the same scale as the risk bands.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.ml.classification import LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from metering_analytics.models.churn.heuristic import COMPONENTS

FEATURE_COLUMNS = tuple(f"c_{name}" for name in COMPONENTS)


@dataclass(frozen=True)
class FittedModel:
    intercept: float
    coefficients: dict[str, float]  # component -> weight (log-odds per unit of the component)
    means: dict[str, float]  # component -> its mean over the training rows (the "typical" customer)
    training_rows: int
    training_churners: int  # distinct subscriptions with a churned row

    def score(self) -> Column:
        """churn_risk from the model, as a Column over `with_components` rows."""
        logit = F.lit(self.intercept)
        for name, weight in self.coefficients.items():
            logit = logit + F.col(f"c_{name}") * weight
        return F.round(1 / (1 + F.exp(-logit)), 6)

    def contributions(self) -> dict[str, Column]:
        """How much each component raises the log-odds compared with the typical training customer."""
        return {name: (F.col(f"c_{name}") - self.means[name]) * w for name, w in self.coefficients.items()}


def fit_model(training: DataFrame, reg_param: float, max_iter: int) -> FittedModel:
    """Fit on rows with `churned` (0/1) and the component columns; classes weighted to balance, the
    intercept then corrected so that scores are probabilities again."""
    counts = training.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum("churned").alias("positives"),
        F.countDistinct(F.when(F.col("churned") == 1.0, F.col("subscription_key"))).alias("churners"),
        *[F.avg(c).alias(c) for c in FEATURE_COLUMNS],
    ).first()
    rows, positives = counts["rows"], counts["positives"] or 0.0
    if positives == 0 or positives == rows:
        raise ValueError("the training rows need both churned and retained examples")
    positive_weight = (rows - positives) / positives
    weighted = training.withColumn("weight", F.when(F.col("churned") == 1.0, positive_weight).otherwise(1.0))
    assembled = VectorAssembler(inputCols=list(FEATURE_COLUMNS), outputCol="features").transform(weighted)
    lr = LogisticRegression(featuresCol="features", labelCol="churned", weightCol="weight", regParam=reg_param,
                            elasticNetParam=0.0, maxIter=max_iter, standardization=True)
    fitted = lr.fit(assembled)
    coefficients = {name: float(w) for name, w in zip(COMPONENTS, fitted.coefficients.toArray())}
    means = {name: float(counts[f"c_{name}"] or 0.0) for name in COMPONENTS}
    intercept = float(fitted.intercept) - math.log(positive_weight)  # back to the real share of churners
    return FittedModel(intercept, coefficients, means, rows, counts["churners"])


# -- evaluation ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evaluation:
    rows: int
    positives: int
    churners: int
    roc_auc: float | None  # None when the rows hold only one class
    pr_auc: float | None
    lift_top_decile: float | None


def evaluate(scored: DataFrame, score: str) -> Evaluation:
    """ROC AUC, PR AUC and lift in the top decile of `score` against `churned`.

    Lift in the top decile = churn rate among the 10% highest scores / overall churn rate. Rows tied at
    the cut-off count in proportion (a score that ties everyone gets lift 1), so the result does not
    depend on how ties happen to be ordered.
    """
    data = scored.select(F.col(score).cast("double").alias("score"), F.col("churned").cast("double").alias("label"),
                         "subscription_key")
    counts = data.agg(F.count(F.lit(1)).alias("rows"), F.sum("label").alias("positives"),
                      F.countDistinct(F.when(F.col("label") == 1.0, F.col("subscription_key"))).alias("churners")
                      ).first()
    rows, positives = counts["rows"], int(counts["positives"] or 0)
    if rows == 0 or positives == 0 or positives == rows:
        return Evaluation(rows, positives, counts["churners"], None, None, None)
    evaluator = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label")
    roc = evaluator.setMetricName("areaUnderROC").evaluate(data)
    pr = evaluator.setMetricName("areaUnderPR").evaluate(data)
    return Evaluation(rows, positives, counts["churners"], round(roc, 6), round(pr, 6),
                      round(_lift_top_decile(data, rows, positives), 6))


def _lift_top_decile(data: DataFrame, rows: int, positives: int) -> float:
    top = rows / 10.0
    groups = data.groupBy("score").agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("pos"))
    # One row per distinct score: few enough for a global window.
    before = Window.orderBy(F.col("score").desc()).rowsBetween(Window.unboundedPreceding, -1)
    taken = (
        groups.withColumn("above", F.coalesce(F.sum("n").over(before), F.lit(0)))
        .withColumn("take", F.least(F.greatest(F.lit(top) - F.col("above"), F.lit(0.0)), F.col("n")))
        .agg(F.sum(F.col("pos") * F.col("take") / F.col("n")).alias("positives_in_top"))
        .first()["positives_in_top"]
    )
    return (taken / top) / (positives / rows) if not math.isclose(top, 0) else float("nan")

