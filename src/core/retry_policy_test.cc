#include "core/retry_policy.h"

#include <gtest/gtest.h>

#include <optional>

namespace resonance {
namespace {

constexpr Micros kSecond = kMicrosPerSecond;

FailedAttempt Failure(ErrorClass cls, int attempt, int max_attempts = kDefaultMaxAttempts,
                      int throttled = 0, std::optional<double> retry_after_s = std::nullopt) {
  return {cls, attempt, max_attempts, throttled, retry_after_s};
}

class RetryPolicyTest : public ::testing::Test {
 protected:
  RetryPolicy policy_ = RetryPolicy::Defaults();
};

TEST_F(RetryPolicyTest, DefaultTableMatchesDesign) {
  // Given the defaults, then each class carries the numbers of DESIGN.md §2.
  const ClassPolicy& temp = policy_.For(ErrorClass::kTemporary);
  EXPECT_EQ(temp.base_s, 1);
  EXPECT_EQ(temp.factor, 5);
  EXPECT_EQ(temp.cap_s, 125);
  EXPECT_EQ(temp.max_retries, 4);
  const ClassPolicy& timeout = policy_.For(ErrorClass::kTimeout);
  EXPECT_EQ(timeout.base_s, 1);
  EXPECT_EQ(timeout.factor, 5);
  EXPECT_EQ(timeout.cap_s, 125);
  EXPECT_EQ(timeout.max_retries, 4);
  EXPECT_EQ(policy_.For(ErrorClass::kRateLimited).base_s, 60);
  EXPECT_EQ(policy_.For(ErrorClass::kRateLimited).max_retries, 10);
  EXPECT_EQ(policy_.For(ErrorClass::kValidation).max_retries, 0);
}

TEST_F(RetryPolicyTest, TemporaryBacksOffOneFiveTwentyFiveOneTwentyFiveThenDead) {
  // Given temporary failures of attempts 1..5 (max_attempts 5), then waits are
  // 1, 5, 25, 125 s, none throttled, and the fifth failure is dead.
  const Micros expected[] = {1 * kSecond, 5 * kSecond, 25 * kSecond, 125 * kSecond};
  for (int attempt = 1; attempt <= 4; ++attempt) {
    RetryDecision d = DecideRetry(policy_, Failure(ErrorClass::kTemporary, attempt));
    EXPECT_EQ(d.outcome, RetryDecision::kRetry) << "attempt " << attempt;
    EXPECT_EQ(d.delay, expected[attempt - 1]) << "attempt " << attempt;
    EXPECT_FALSE(d.throttled) << "attempt " << attempt;
  }
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 5)).outcome,
            RetryDecision::kDead);
}

TEST_F(RetryPolicyTest, TimeoutBacksOffLikeTemporary) {
  // Given timeout failures, then the same 1, 5, 25, 125 s table applies, dead at the 5th.
  const Micros expected[] = {1 * kSecond, 5 * kSecond, 25 * kSecond, 125 * kSecond};
  for (int attempt = 1; attempt <= 4; ++attempt) {
    RetryDecision d = DecideRetry(policy_, Failure(ErrorClass::kTimeout, attempt));
    EXPECT_EQ(d.outcome, RetryDecision::kRetry) << "attempt " << attempt;
    EXPECT_EQ(d.delay, expected[attempt - 1]) << "attempt " << attempt;
  }
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTimeout, 5)).outcome,
            RetryDecision::kDead);
}

TEST_F(RetryPolicyTest, RetriesExhaustedBeforeMaxAttemptsIsDead) {
  // Given max_attempts 10 but 4 retries for temporary, then the 5th failure is dead.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 4, 10)).outcome,
            RetryDecision::kRetry);
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 5, 10)).outcome,
            RetryDecision::kDead);
}

TEST_F(RetryPolicyTest, SmallMaxAttemptsStopsEarlier) {
  // Given max_attempts 2 (below the 4 retries of the class), then the 2nd failure is dead.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 1, 2)).outcome,
            RetryDecision::kRetry);
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 2, 2)).outcome,
            RetryDecision::kDead);
  // And max_attempts 1 means no retry at all.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 1, 1)).outcome,
            RetryDecision::kDead);
}

TEST_F(RetryPolicyTest, RateLimitedHonoursRetryAfter) {
  // Given a rate_limited failure with retry_after_s 7.5, then it waits 7.5 s, throttled.
  RetryDecision d =
      DecideRetry(policy_, Failure(ErrorClass::kRateLimited, 1, kDefaultMaxAttempts, 0, 7.5));
  EXPECT_EQ(d.outcome, RetryDecision::kRetry);
  EXPECT_EQ(d.delay, 7'500'000);
  EXPECT_TRUE(d.throttled);
}

TEST_F(RetryPolicyTest, RateLimitedDefaultsToSixtySeconds) {
  // Given a rate_limited failure without retry_after_s, then it waits 60 s.
  RetryDecision d = DecideRetry(policy_, Failure(ErrorClass::kRateLimited, 1));
  EXPECT_EQ(d.outcome, RetryDecision::kRetry);
  EXPECT_EQ(d.delay, 60 * kSecond);
  EXPECT_TRUE(d.throttled);
}

TEST_F(RetryPolicyTest, RateLimitedDoesNotUseUpAttempts) {
  // Given max_attempts 1 and an attempt far past it, then rate_limited still retries.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kRateLimited, 7, 1, 6)).outcome,
            RetryDecision::kRetry);
  // And given 3 throttled retries before, a temporary failure of attempt 4 counts as the
  // first used attempt: it retries after 1 s.
  RetryDecision d = DecideRetry(policy_, Failure(ErrorClass::kTemporary, 4, 5, 3));
  EXPECT_EQ(d.outcome, RetryDecision::kRetry);
  EXPECT_EQ(d.delay, 1 * kSecond);
  EXPECT_FALSE(d.throttled);
  // And with 3 throttled of 7 attempts, 4 used of max 4 is dead.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 7, 4, 3)).outcome,
            RetryDecision::kDead);
}

TEST_F(RetryPolicyTest, RateLimitedDeadAfterTenThrottled) {
  // Given 9 throttled retries before, then one more retries; given 10, then dead.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kRateLimited, 10, 5, 9)).outcome,
            RetryDecision::kRetry);
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kRateLimited, 11, 5, 10)).outcome,
            RetryDecision::kDead);
}

TEST_F(RetryPolicyTest, RateLimitedNegativeRetryAfterFallsBackToDefault) {
  // Given retry_after_s -1, then the 60 s default wait applies.
  RetryDecision d =
      DecideRetry(policy_, Failure(ErrorClass::kRateLimited, 1, kDefaultMaxAttempts, 0, -1.0));
  EXPECT_EQ(d.delay, 60 * kSecond);
}

TEST_F(RetryPolicyTest, ValidationIsDeadAtOnce) {
  // Given a validation failure on the first attempt, then the task is dead.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kValidation, 1)).outcome,
            RetryDecision::kDead);
}

TEST_F(RetryPolicyTest, CancelledIsCancelled) {
  // Given a cancelled failure, then the outcome is kCancelled, not dead or retry.
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kCancelled, 1)).outcome,
            RetryDecision::kCancelled);
}

TEST_F(RetryPolicyTest, CapLimitsWait) {
  // Given base 10 s, factor 10, cap 50 s, then waits are 10, 50, 50 s.
  policy_.For(ErrorClass::kTemporary) = {10, 10, 50, 5};
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 1, 10)).delay, 10 * kSecond);
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 2, 10)).delay, 50 * kSecond);
  EXPECT_EQ(DecideRetry(policy_, Failure(ErrorClass::kTemporary, 3, 10)).delay, 50 * kSecond);
}

TEST_F(RetryPolicyTest, CapLimitsRetryAfter) {
  // Given a rate_limited cap of 30 s, then retry_after_s 1000 waits 30 s.
  policy_.For(ErrorClass::kRateLimited).cap_s = 30;
  EXPECT_EQ(
      DecideRetry(policy_, Failure(ErrorClass::kRateLimited, 1, kDefaultMaxAttempts, 0, 1000.0))
          .delay,
      30 * kSecond);
}

TEST(RetryPoliciesTest, PerActionOverrideFallsBackToDefault) {
  // Given an override for "send_mail", then that action uses it and others the default.
  RetryPolicies policies;
  RetryPolicy strict = RetryPolicy::Defaults();
  strict.For(ErrorClass::kTemporary) = {2, 3, 100, 1};
  policies.SetForAction("send_mail", strict);

  const RetryPolicy& mail = policies.For("send_mail");
  RetryDecision d = DecideRetry(mail, Failure(ErrorClass::kTemporary, 1));
  EXPECT_EQ(d.outcome, RetryDecision::kRetry);
  EXPECT_EQ(d.delay, 2 * kSecond);
  EXPECT_EQ(DecideRetry(mail, Failure(ErrorClass::kTemporary, 2)).outcome,
            RetryDecision::kDead);

  const RetryPolicy& other = policies.For("resize_image");
  EXPECT_EQ(DecideRetry(other, Failure(ErrorClass::kTemporary, 1)).delay, 1 * kSecond);
  EXPECT_EQ(DecideRetry(other, Failure(ErrorClass::kTemporary, 2)).outcome,
            RetryDecision::kRetry);
}

TEST(RetryPoliciesTest, ChangedDefaultAppliesToActionsWithoutOverride) {
  // Given a server-wide default with base 3 s, then an action without override waits 3 s.
  RetryPolicies policies;
  policies.Default().For(ErrorClass::kTemporary).base_s = 3;
  EXPECT_EQ(DecideRetry(policies.For("x"), Failure(ErrorClass::kTemporary, 1)).delay,
            3 * kSecond);
}

}  // namespace
}  // namespace resonance
